//! `divgpu devices`: every adapter wgpu sees, numbered, with the limits divgpu cares about.

use std::io::Write;
use std::process::ExitCode;

use divgpu::gpu;

use crate::failure::Failure;
use crate::output::{note, write_stdout};

pub fn command(json: bool) -> Result<ExitCode, Failure> {
    let devices = gpu::devices()?;
    if json {
        write_stdout(|out| {
            serde_json::to_writer(&mut *out, &devices)?;
            out.write_all(b"\n")
        })?;
    } else if devices.is_empty() {
        note!("{}", gpu::context::no_adapter_message());
    } else {
        let mut out = String::new();
        for d in &devices {
            out += &format!(
                "{}: {}\n  backend {}, type {}, PCI bus id {}, driver {}\n  max storage binding {} bytes, max buffer {} bytes, 64-bit shader integers: {}, timestamp queries: {}\n",
                d.index,
                d.adapter.name,
                d.adapter.backend,
                d.adapter.device_type,
                d.pci_bus_id.as_deref().unwrap_or("-"),
                if d.adapter.driver.is_empty() { "-" } else { &d.adapter.driver },
                d.max_storage_binding_bytes,
                d.max_buffer_bytes,
                yes_no(d.shader_int64),
                yes_no(d.timestamp_query),
            );
        }
        write_stdout(|stdout| stdout.write_all(out.as_bytes()))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}
