//! Every shader parses and validates with naga, the compiler wgpu itself uses: a broken shader
//! fails here, with no GPU needed.

use divgpu::gpu::pipelines::{shader_sources, PARAMS_BYTES, WIDE_STATE_BYTES};
use wgpu::naga;

#[test]
fn every_shader_parses_and_validates() {
    for (label, source) in shader_sources() {
        let module = naga::front::wgsl::parse_str(&source)
            .unwrap_or_else(|e| panic!("{label}: {}", e.emit_to_string(&source)));
        let mut validator = naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::empty(),
        );
        let info = validator
            .validate(&module)
            .unwrap_or_else(|e| panic!("{label}: {}", e.emit_to_string(&source)));
        // With the workgroup size the pipelines set, as the GPU would see it.
        let constants = [("WG_SIZE".to_string(), 256.0)].into_iter().collect();
        let (resolved, _) =
            naga::back::pipeline_constants::process_overrides(&module, &info, None, &constants)
                .unwrap_or_else(|e| panic!("{label}: overrides: {e}"));
        assert_eq!(resolved.entry_points.len(), 1, "{label}: one entry point");
        assert_eq!(
            resolved.entry_points[0].workgroup_size,
            [256, 1, 1],
            "{label}"
        );
        // the Rust mirror of `Params` (src/gpu/array.rs) has the WGSL struct's size
        let mut layouter = naga::proc::Layouter::default();
        layouter.update(module.to_ctx()).unwrap();
        let (params, _) = module
            .types
            .iter()
            .find(|(_, t)| t.name.as_deref() == Some("Params"))
            .expect("a Params struct");
        assert_eq!(
            u64::from(layouter[params].size),
            PARAMS_BYTES,
            "{label}: Params size"
        );
        // and the host sizes the wide states buffer by the WGSL struct's size
        let wide = module
            .types
            .iter()
            .find(|(_, t)| t.name.as_deref() == Some("Wide"))
            .map(|(handle, _)| handle);
        assert_eq!(wide.is_some(), label == "wide", "{label}: the Wide struct");
        if let Some(wide) = wide {
            assert_eq!(
                u64::from(layouter[wide].size),
                WIDE_STATE_BYTES,
                "Wide size"
            );
        }
    }
}

/// The divisor table's sieve and its packing: they parse, validate, take the workgroup size, and
/// their `SieveParams` has the Rust mirror's size.
#[test]
fn the_sieve_shaders_parse_and_validate() {
    use divgpu::gpu::table::{sieve_sources, SIEVE_PARAMS_BYTES};
    for (label, source) in sieve_sources() {
        let module = naga::front::wgsl::parse_str(&source)
            .unwrap_or_else(|e| panic!("{label}: {}", e.emit_to_string(&source)));
        let info = naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::empty(),
        )
        .validate(&module)
        .unwrap_or_else(|e| panic!("{label}: {}", e.emit_to_string(&source)));
        let constants = [("WG_SIZE".to_string(), 256.0)].into_iter().collect();
        let (resolved, _) =
            naga::back::pipeline_constants::process_overrides(&module, &info, None, &constants)
                .unwrap_or_else(|e| panic!("{label}: overrides: {e}"));
        assert_eq!(
            resolved.entry_points[0].workgroup_size,
            [256, 1, 1],
            "{label}"
        );
        let mut layouter = naga::proc::Layouter::default();
        layouter.update(module.to_ctx()).unwrap();
        let (params, _) = module
            .types
            .iter()
            .find(|(_, t)| t.name.as_deref() == Some("SieveParams"))
            .expect("a SieveParams struct");
        assert_eq!(
            u64::from(layouter[params].size),
            SIEVE_PARAMS_BYTES,
            "{label}"
        );
    }
}
