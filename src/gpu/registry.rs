//! One device per adapter per process, shared by every session.
//!
//! Opening a device costs an adapter enumeration (tens of milliseconds with every backend
//! probed), the device itself (driver memory on a real GPU) and a compile of every pipeline. So
//! the process opens each adapter once: every `Session`, Python `Index`, `divgpu.count`,
//! `divgpu.dask` worker, `--queries` stream and `bench` run in it shares that device, its queue
//! and its pipelines. What belongs to one array (its uploaded buffers, its divisor table) stays
//! with that array's session and is freed with it; the devices live as long as the process.
//!
//! Each request's answer is kept too, the first `auto` probe's included: a process that found
//! no hardware GPU does not look again. Errors are not kept (the next request tries again).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::Result;
use crate::gpu::context::{self, AdapterSummary, GpuContext};
use crate::gpu::select;

/// What decides which adapter a request gets.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Request {
    /// The adapter asked for (by the caller, else by `WGPU_ADAPTER_NAME`).
    adapter: Option<String>,
    hardware_only: bool,
    shader_int64: bool,
    /// `WGPU_POWER_PREF`, which orders the candidates.
    power: Option<String>,
    /// `CUDA_VISIBLE_DEVICES` and `NVIDIA_VISIBLE_DEVICES`.
    visible: [Option<String>; 2],
}

/// A request's answer: the device (none where nothing qualified), and what the user should
/// know about the choice (shown by every session that gets it).
#[derive(Clone)]
pub struct Opened {
    pub gpu: Option<Arc<GpuContext>>,
    pub note: Option<String>,
}

#[derive(Default)]
struct Registry {
    answers: HashMap<Request, Opened>,
    /// The devices opened, by adapter and by whether they use 64-bit shader integers.
    devices: Vec<(wgpu::AdapterInfo, bool, Arc<GpuContext>)>,
}

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);

/// The device for `adapter` (see [`select::choose_adapter`]; `hardware_only` keeps real GPUs
/// only, unless one is named), opened on the first request and shared by every later one that
/// chooses the same adapter. No device when nothing qualifies and no adapter was named.
pub fn open(adapter: Option<&str>, hardware_only: bool, shader_int64: bool) -> Result<Opened> {
    // the instance first: a process forked while another thread holds the registry's lock
    // finds the instance's owner set (that thread had made it), and stops here
    let instance = context::instance()?;
    let request = Request {
        adapter: adapter
            .map(str::to_string)
            .or_else(|| std::env::var("WGPU_ADAPTER_NAME").ok()),
        hardware_only,
        shader_int64,
        power: std::env::var("WGPU_POWER_PREF").ok(),
        visible: ["CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES"].map(|v| std::env::var(v).ok()),
    };
    // held while a device opens: a second request waits for it rather than open another
    let mut registry = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
    let registry = registry.get_or_insert_with(Registry::default);
    if let Some(answer) = registry.answers.get(&request) {
        return Ok(answer.clone());
    }
    let choice = select::choose_adapter(instance, adapter, hardware_only)?;
    let gpu = match choice.adapter {
        None => None,
        Some(chosen) => {
            let info = chosen.get_info();
            let opened = registry
                .devices
                .iter()
                .find(|(i, int64, _)| *i == info && *int64 == shader_int64);
            Some(match opened {
                Some((_, _, device)) => device.clone(),
                None => {
                    let device = Arc::new(GpuContext::with_shader_int64(&chosen, shader_int64)?);
                    registry.devices.push((info, shader_int64, device.clone()));
                    device
                }
            })
        }
    };
    let answer = Opened {
        gpu,
        note: choice.note,
    };
    registry.answers.insert(request, answer.clone());
    Ok(answer)
}

/// The devices this process has opened, in the order it opened them.
pub fn opened() -> Vec<AdapterSummary> {
    let registry = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
    registry
        .iter()
        .flat_map(|r| &r.devices)
        .map(|(_, _, device)| device.summary())
        .collect()
}
