//! Every shader parses and validates with naga, the compiler wgpu itself uses: a broken shader
//! fails here, with no GPU needed.

use divgpu::gpu::pipelines::{
    shader_sources, sieve_source, LOCAL_BUCKETS, PARAMS_BYTES, WIDE_STATE_BYTES,
};
use divgpu::gpu::table::SIEVE_PARAMS_BYTES;
use wgpu::naga;

/// `source` parsed and validated; with the workgroup size the pipelines set (as the GPU would
/// see it) it has `entry_points` entry points of that size, and its struct `params` is
/// `params_bytes` long, the size of its Rust mirror. The module and its layouter, for more.
fn validated(
    label: &str,
    capabilities: naga::valid::Capabilities,
    source: &str,
    entry_points: usize,
    (params, params_bytes): (&str, u64),
) -> (naga::Module, naga::proc::Layouter) {
    let module = naga::front::wgsl::parse_str(source)
        .unwrap_or_else(|e| panic!("{label}: {}", e.emit_to_string(source)));
    let info = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), capabilities)
        .validate(&module)
        .unwrap_or_else(|e| panic!("{label}: {}", e.emit_to_string(source)));
    let constants = [("WG_SIZE".to_string(), 256.0)].into_iter().collect();
    let (resolved, _) =
        naga::back::pipeline_constants::process_overrides(&module, &info, None, &constants)
            .unwrap_or_else(|e| panic!("{label}: overrides: {e}"));
    assert_eq!(
        resolved.entry_points.len(),
        entry_points,
        "{label}: entry points"
    );
    for entry in &resolved.entry_points {
        assert_eq!(entry.workgroup_size, [256, 1, 1], "{label}: {}", entry.name);
    }
    let mut layouter = naga::proc::Layouter::default();
    layouter.update(module.to_ctx()).unwrap();
    let (handle, _) = module
        .types
        .iter()
        .find(|(_, t)| t.name.as_deref() == Some(params))
        .unwrap_or_else(|| panic!("{label}: a {params} struct"));
    assert_eq!(
        u64::from(layouter[handle].size),
        params_bytes,
        "{label}: {params} size"
    );
    (module, layouter)
}

#[test]
fn every_shader_parses_and_validates() {
    for (label, source) in shader_sources() {
        // the Rust mirror of `Params` (src/gpu/query.rs) has the WGSL struct's size
        // only the native wide pipeline uses 64-bit integers (and the emulated one must not)
        let capabilities = if label == "wide-int64" {
            naga::valid::Capabilities::SHADER_INT64
        } else {
            naga::valid::Capabilities::empty()
        };
        let (module, layouter) =
            validated(label, capabilities, &source, 1, ("Params", PARAMS_BYTES));
        // and the host sizes the wide states buffer by the WGSL struct's size
        let wide = module
            .types
            .iter()
            .find(|(_, t)| t.name.as_deref() == Some("Wide"))
            .map(|(handle, _)| handle);
        assert_eq!(
            wide.is_some(),
            label.starts_with("wide"),
            "{label}: the Wide struct"
        );
        // the host sizes fast's histogram by the workgroup buckets the shader has
        if label == "fast" {
            let constant = format!("const LOCAL_BUCKETS: u32 = {LOCAL_BUCKETS}u;");
            assert!(source.contains(&constant), "fast: {constant}");
        }
        if let Some(wide) = wide {
            assert_eq!(
                u64::from(layouter[wide].size),
                WIDE_STATE_BYTES,
                "Wide size"
            );
        }
    }
    // the divisor table's sieve: entry points `main` and `pack`, and `SieveParams`
    let (label, source) = sieve_source();
    validated(
        label,
        naga::valid::Capabilities::empty(),
        &source,
        2,
        ("SieveParams", SIEVE_PARAMS_BYTES),
    );
}

/// Each struct the host writes for the shaders (`divgpu::gpu::mirrors`) against naga's layout
/// of the WGSL struct of that name, member by member: the same names in the same order at the
/// same byte offsets, and the same size (padding, `_`-named on both sides, is not compared by
/// name). A member added, removed, renamed, reordered or resized on one side fails here.
#[test]
fn every_mirrored_struct_matches_its_wgsl_struct_member_by_member() {
    let mut sources = shader_sources().to_vec();
    sources.push(sieve_source());
    for (name, members, size) in divgpu::gpu::mirrors() {
        let mut checked = 0;
        for (label, source) in &sources {
            let module = naga::front::wgsl::parse_str(source).unwrap();
            let Some((handle, ty)) = module
                .types
                .iter()
                .find(|(_, t)| t.name.as_deref() == Some(name))
            else {
                continue;
            };
            let mut layouter = naga::proc::Layouter::default();
            layouter.update(module.to_ctx()).unwrap();
            let naga::TypeInner::Struct {
                members: wgsl,
                span,
            } = &ty.inner
            else {
                panic!("{label}: {name} is not a struct");
            };
            let named = |n: &str| !n.starts_with('_');
            let wgsl_members: Vec<(&str, usize)> = wgsl
                .iter()
                .map(|m| (m.name.as_deref().unwrap_or("_"), m.offset as usize))
                .filter(|(n, _)| named(n))
                .collect();
            let rust_members: Vec<(&str, usize)> =
                members.iter().copied().filter(|(n, _)| named(n)).collect();
            assert_eq!(rust_members, wgsl_members, "{label}: {name}'s members");
            assert_eq!(size, *span as usize, "{label}: {name}'s size");
            assert_eq!(u64::from(layouter[handle].size), *span as u64);
            // the padding is the tail on both sides
            let last_named = |offsets: &[(&str, usize)]| offsets.last().map(|&(_, o)| o);
            assert_eq!(last_named(&rust_members), last_named(&wgsl_members));
            checked += 1;
        }
        assert!(checked > 0, "no shader declares {name}");
    }
}
