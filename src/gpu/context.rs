//! Instance, adapter and device: chosen once, honouring wgpu's own environment variables.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use bytemuck::Pod;

use serde::Serialize;

use crate::error::{Error, GpuError, Result};
use crate::gpu::buffers::{init_buffer, zeroed};
use crate::gpu::pipelines::{Pipelines, SievePipelines};

/// What a user needs to know about the adapter that ran (printed on stderr, and in `--json`).
#[derive(Clone, Debug, Serialize)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
}

impl AdapterSummary {
    pub fn of(info: &wgpu::AdapterInfo) -> Self {
        AdapterSummary {
            name: info.name.clone(),
            backend: format!("{:?}", info.backend).to_lowercase(),
            device_type: device_type_name(info.device_type).to_string(),
            driver: [info.driver.as_str(), info.driver_info.as_str()]
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

pub fn device_type_name(t: wgpu::DeviceType) -> &'static str {
    match t {
        wgpu::DeviceType::DiscreteGpu => "discrete",
        wgpu::DeviceType::IntegratedGpu => "integrated",
        wgpu::DeviceType::VirtualGpu => "virtual",
        wgpu::DeviceType::Cpu => "cpu (software)",
        wgpu::DeviceType::Other => "other",
    }
}

/// A real GPU, not a software rasteriser: what `--backend auto` is willing to use.
pub fn is_hardware(info: &wgpu::AdapterInfo) -> bool {
    matches!(
        info.device_type,
        wgpu::DeviceType::DiscreteGpu | wgpu::DeviceType::IntegratedGpu
    )
}

/// The warning every GPU result on a software adapter carries.
pub fn software_warning(info: &wgpu::AdapterInfo) -> Option<String> {
    (!is_hardware(info)).then(|| {
        format!(
            "{} is a software adapter: its timings say nothing about a real GPU",
            info.name
        )
    })
}

/// The process that made the first wgpu instance, or 0 before any.
static INSTANCE_OWNER: AtomicU32 = AtomicU32::new(0);

/// The process's one wgpu instance, over the backends in `WGPU_BACKEND` (all of them when it is
/// unset; read once, when the instance is made). [`Error::Forked`] in a process forked from
/// one that had made it: the drivers' state was copied into the child without their threads
/// (Mesa's GL hung there on its first device), so divgpu opens GPUs only in processes that
/// start fresh (see [`crate::fork`]).
pub fn instance() -> Result<&'static wgpu::Instance> {
    static INSTANCE: OnceLock<wgpu::Instance> = OnceLock::new();
    let here = std::process::id();
    // the owner is recorded before the instance is made, so that a process forked while
    // another thread makes it finds the owner set, and never waits on that thread's `OnceLock`
    match INSTANCE_OWNER.compare_exchange(0, here, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {}
        Err(owner) if owner == here => {}
        Err(owner) => return Err(Error::Forked { owner }),
    }
    quiet_runtime_dir();
    Ok(INSTANCE.get_or_init(|| {
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env())
    }))
}

/// Points `XDG_RUNTIME_DIR` at a private folder when it is unset or not an absolute path, once,
/// before the first instance. Mesa's Vulkan drivers probe for a Wayland display while they are
/// enumerated, and libwayland prints `error: XDG_RUNTIME_DIR is invalid or not set in the
/// environment.` to stderr for each probe without one: in containers, cron jobs, CI and ssh
/// sessions a user read that as divgpu failing. With a folder that holds no Wayland socket the
/// probe fails quietly, as it does on a desktop without Wayland (`private_folder`). Setting
/// the variable races with another thread reading the environment at that moment, so the
/// binary calls this first thing, and the Python extension when it is imported (with the
/// GIL); [`instance`] calls it too, and after the first call it does nothing.
pub fn quiet_runtime_dir() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    #[cfg(unix)]
    ONCE.call_once(|| {
        let set = std::env::var_os("XDG_RUNTIME_DIR")
            .is_some_and(|d| std::path::Path::new(&d).is_absolute());
        if set {
            return;
        }
        if let Some(dir) = private_folder() {
            std::env::set_var("XDG_RUNTIME_DIR", dir);
        }
    });
    #[cfg(not(unix))]
    ONCE.call_once(|| {});
}

/// `$TMPDIR/divgpu-runtime-<uid>`, or `...-<uid>-1` to `-7` where that one is not a folder
/// only this user can enter (made 0700 where missing, and kept for later runs, so that runs
/// leave no new folders behind); `None` when none of them is.
#[cfg(unix)]
fn private_folder() -> Option<std::path::PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    // SAFETY: getuid cannot fail
    let uid = unsafe { libc::getuid() };
    (0..8).find_map(|n| {
        let name = match n {
            0 => format!("divgpu-runtime-{uid}"),
            n => format!("divgpu-runtime-{uid}-{n}"),
        };
        let dir = std::env::temp_dir().join(name);
        std::fs::DirBuilder::new().mode(0o700).create(&dir).ok();
        std::fs::symlink_metadata(&dir)
            .is_ok_and(|m| m.is_dir() && m.uid() == uid && m.permissions().mode() & 0o077 == 0)
            .then_some(dir)
    })
}

/// The process this one was forked from, where that one had opened a GPU before the fork
/// (and so no GPU opens here: [`instance`]).
pub fn forked_from() -> Option<u32> {
    match INSTANCE_OWNER.load(Ordering::Acquire) {
        0 => None,
        owner if owner == std::process::id() => None,
        owner => Some(owner),
    }
}

/// Every adapter the instance sees, in the instance's order (`divgpu devices` numbers them so).
/// Taken in GL's turn: enumerating makes GL contexts, under a lock of wgpu's that panics
/// after a wait ([`GpuContext::turn`]).
pub fn adapters(instance: &wgpu::Instance) -> Vec<wgpu::Adapter> {
    let _turn = GL_TURN.take();
    pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
}

/// The message for `--backend gpu` when no adapter exists at all.
pub fn no_adapter_message() -> String {
    let mut message = "no GPU adapter found: install your GPU's Vulkan, Metal, DX12 or GL \
                       driver, or Mesa's software drivers (lavapipe: `apt-get install \
                       mesa-vulkan-drivers`; llvmpipe for GL), or run with --backend cpu"
        .to_string();
    if let Some(hint) = nvidia_hint() {
        message = format!("{message}. {hint}");
    }
    message
}

/// Why an NVIDIA GPU that is there is not seen, where that is the likely reason: its driver is
/// present (a device node, or `/proc/driver/nvidia`) but no NVIDIA Vulkan ICD file is where the
/// Vulkan loader looks. Containers started with only the `compute` driver capability are so.
pub fn nvidia_hint() -> Option<String> {
    nvidia_hint_in(Path::new("/"), |name| std::env::var(name).ok())
}

/// [`nvidia_hint`] for a file system under `root` and an environment `env` (tests).
fn nvidia_hint_in(root: &Path, env: impl Fn(&str) -> Option<String>) -> Option<String> {
    let under = |path: &str| root.join(path.trim_start_matches('/'));
    let driver = [
        "/dev/nvidiactl",
        "/dev/nvidia0",
        "/proc/driver/nvidia/version",
    ]
    .into_iter()
    .find(|p| under(p).exists())?;
    // the Vulkan loader's places for ICD files: its own variables override the rest
    let listed = env("VK_DRIVER_FILES").or_else(|| env("VK_ICD_FILENAMES"));
    let places: Vec<String> = match &listed {
        Some(list) => list.split(':').map(str::to_string).collect(),
        None => {
            let mut dirs = vec![];
            let config = env("XDG_CONFIG_DIRS").unwrap_or_else(|| "/etc/xdg".into());
            dirs.extend(config.split(':').map(|d| format!("{d}/vulkan/icd.d")));
            dirs.push("/etc/vulkan/icd.d".into());
            let data = env("XDG_DATA_DIRS").unwrap_or_else(|| "/usr/local/share:/usr/share".into());
            dirs.extend(data.split(':').map(|d| format!("{d}/vulkan/icd.d")));
            dirs
        }
    };
    let nvidia_icd = places.iter().filter(|p| !p.is_empty()).any(|place| {
        let path = under(place);
        let named = |p: &Path| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.to_lowercase().contains("nvidia") && n.ends_with(".json"))
        };
        if path.is_dir() {
            std::fs::read_dir(&path)
                .map(|entries| entries.flatten().any(|e| named(&e.path())))
                .unwrap_or(false)
        } else {
            named(&path) && path.exists()
        }
    });
    if nvidia_icd {
        return None;
    }
    let capabilities = match env("NVIDIA_DRIVER_CAPABILITIES") {
        Some(c) => format!(" (it is '{c}')"),
        None => String::new(),
    };
    Some(format!(
        "An NVIDIA driver is present ({driver}), but no NVIDIA Vulkan ICD file (nvidia_icd.json) \
         is where the Vulkan loader looks ({}), so Vulkan cannot see the GPU: in a container, \
         start it with NVIDIA_DRIVER_CAPABILITIES including 'graphics'{capabilities}, for \
         example compute,utility,graphics; elsewhere install the driver's Vulkan part",
        match &listed {
            Some(list) => format!("VK_DRIVER_FILES/VK_ICD_FILENAMES: {list}"),
            None => "/etc/vulkan/icd.d, /usr/share/vulkan/icd.d and the XDG folders".into(),
        }
    ))
}

/// GL's one context, taken in turns by every thread of the process that uses a GL device.
///
/// wgpu-hal's GL backend has one context per adapter, shared by every device opened on it, and
/// locks it for each call: a buffer made, a submission, each wait for the GPU (up to 4.3 s a
/// call). A thread that waits more than 6 s for that lock panics ("Could not lock adapter
/// context. This is most-likely a deadlock."; `CONTEXT_LOCK_TIMEOUT_SECS`). Eight threads
/// counting on one GL device, on a loaded machine, waited that long. So divgpu's own calls
/// wait here instead, with no time limit, and hold the turn across a whole upload, query or
/// release (a reentrant lock: an operation that calls another keeps its turn). Then wgpu's lock
/// is never contended by divgpu. Vulkan, Metal and DX12 need no turns.
struct Turns {
    /// The thread whose turn it is, and how many of its calls hold it.
    holder: Mutex<Option<(ThreadId, usize)>>,
    free: Condvar,
}

static GL_TURN: Turns = Turns {
    holder: Mutex::new(None),
    free: Condvar::new(),
};

/// A thread's turn at the GPU ([`GpuContext::turn`]), until dropped.
#[must_use = "the turn ends when the guard is dropped"]
pub struct Turn {
    taken: bool,
}

impl Turns {
    fn take(&'static self) -> Turn {
        let me = std::thread::current().id();
        let mut holder = self.holder.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            match &mut *holder {
                None => {
                    *holder = Some((me, 1));
                    break;
                }
                Some((thread, depth)) if *thread == me => {
                    *depth += 1;
                    break;
                }
                Some(_) => holder = self.free.wait(holder).unwrap_or_else(|p| p.into_inner()),
            }
        }
        Turn { taken: true }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        if !self.taken {
            return;
        }
        let mut holder = GL_TURN.holder.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, depth)) = &mut *holder {
            *depth -= 1;
            if *depth == 0 {
                *holder = None;
                GL_TURN.free.notify_one();
            }
        }
    }
}

/// The turn of `backend`'s devices: GL's, or none.
pub(crate) fn turn_of(backend: wgpu::Backend) -> Turn {
    match backend {
        wgpu::Backend::Gl => GL_TURN.take(),
        _ => Turn { taken: false },
    }
}

/// Everything built once and reused for every upload and query: device, queue, pipelines.
pub struct GpuContext {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) pipelines: Pipelines,
    pub(crate) limits: wgpu::Limits,
    /// The divisor table's sieve, built on first use.
    sieve: OnceLock<SievePipelines>,
    info: wgpu::AdapterInfo,
    uncaptured: Arc<Mutex<Option<wgpu::Error>>>,
}

impl GpuContext {
    /// Opens a device on `adapter` with the adapter's own limits (not WebGPU's defaults), so
    /// the largest bindings the hardware allows are available, and its 64-bit shader integers
    /// where it has them.
    pub fn new(adapter: &wgpu::Adapter) -> Result<Self> {
        Self::with_shader_int64(adapter, true)
    }

    /// [`GpuContext::new`], using the adapter's 64-bit shader integers (`SHADER_INT64`) for
    /// values of 2^32 and above only when `use_int64` and the adapter has them; emulated
    /// 64-bit arithmetic otherwise. Tests and benches compare the two on one adapter.
    pub fn with_shader_int64(adapter: &wgpu::Adapter, use_int64: bool) -> Result<Self> {
        let _turn = turn_of(adapter.get_info().backend);
        let native_int64 = use_int64 && adapter.features().contains(wgpu::Features::SHADER_INT64);
        let mut features = adapter.features() & wgpu::Features::TIMESTAMP_QUERY;
        if native_int64 {
            features |= wgpu::Features::SHADER_INT64;
        }
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("divgpu"),
            // timestamps, where the adapter has them, time the passes (bench, JSON report)
            required_features: features,
            required_limits: adapter.limits(),
            ..Default::default()
        }))
        .map_err(|e| Error::gpu(format!("could not open {}", adapter.get_info().name), e))?;
        let info = adapter.get_info();
        let uncaptured = Arc::new(Mutex::new(None));
        let sink = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            sink.lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert(e);
        }));
        let limits = device.limits();
        let context = GpuContext {
            pipelines: Pipelines::new(&device, &limits, native_int64)?,
            device,
            queue,
            limits,
            sieve: Default::default(),
            info,
            uncaptured,
        };
        context.check("building the pipelines", || Ok(()))?;
        Ok(context)
    }

    /// This thread's turn at the device, held until the guard is dropped: on GL, one thread of
    /// the process at a time (see `Turns`); on other backends it holds nothing. divgpu takes it
    /// for every upload, query and release; code that uses [`GpuContext::device`] directly
    /// beside divgpu's (tests, benches) takes it too, for the same reason.
    pub fn turn(&self) -> Turn {
        turn_of(self.info.backend)
    }

    /// The device, for code that builds its own pipelines beside divgpu's (tests, benches).
    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }

    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.info
    }

    /// Whether values of 2^32 and above are factored with the adapter's own 64-bit integers.
    pub fn native_int64(&self) -> bool {
        self.pipelines.native_int64
    }

    /// Invocations per workgroup in every pipeline: element counts around it are the edge cases.
    pub fn workgroup_size(&self) -> u32 {
        self.pipelines.workgroup_size
    }

    pub fn summary(&self) -> AdapterSummary {
        AdapterSummary::of(&self.info)
    }

    /// The most elements of `width` bytes one chunk may hold: one storage binding, one buffer,
    /// whole words (and a u32 index per element).
    pub fn max_chunk_elements(&self, width: usize) -> usize {
        let bytes = self
            .limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size)
            / 4
            * 4;
        (bytes / width as u64).min(u64::from(u32::MAX)) as usize
    }

    /// The sieve's pipelines, built on the first divisor table.
    pub(crate) fn sieve_pipelines(&self) -> &SievePipelines {
        self.sieve
            .get_or_init(|| SievePipelines::new(&self.device, self.pipelines.workgroup_size))
    }

    /// Runs `work` with wgpu's validation, out-of-memory and internal errors captured instead of
    /// panicking, and turns any of them into an [`Error::Gpu`] that says what was being done.
    pub(crate) fn check<T>(&self, doing: &str, work: impl FnOnce() -> Result<T>) -> Result<T> {
        let scopes = [
            self.device.push_error_scope(wgpu::ErrorFilter::Validation),
            self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory),
            self.device.push_error_scope(wgpu::ErrorFilter::Internal),
        ];
        let result = work();
        let mut captured = None;
        for scope in scopes.into_iter().rev() {
            if let Some(e) = pollster::block_on(scope.pop()) {
                captured.get_or_insert(e);
            }
        }
        let uncaptured = self
            .uncaptured
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        match captured.or(uncaptured) {
            Some(e) => Err(Error::gpu(doing, GpuError::Wgpu(e))),
            None => result,
        }
    }

    pub(crate) fn init_buffer<T: Pod>(
        &self,
        label: &str,
        usage: wgpu::BufferUsages,
        data: &[T],
    ) -> wgpu::Buffer {
        init_buffer(&self.device, label, usage, data)
    }

    /// Copies `size` bytes of `source` into a mappable buffer and reads them on the host.
    pub(crate) fn read_back<T: Pod>(&self, source: &wgpu::Buffer, size: u64) -> Result<Vec<T>> {
        let usage = wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST;
        let staging = zeroed(&self.device, "divgpu readback", size, usage);
        let mut encoder = self.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(source, 0, &staging, 0, size);
        self.queue.submit([encoder.finish()]);
        self.map_read(&staging)
    }

    /// Waits for the queue, then reads a mappable buffer on the host.
    pub(crate) fn map_read<T: Pod>(&self, staging: &wgpu::Buffer) -> Result<Vec<T>> {
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.wait()?;
        rx.recv()
            .map_err(|_| Error::gpu("mapping the readback", GpuError::NeverMapped))?
            .map_err(|e| Error::gpu("mapping the readback", e))?;
        let data = bytemuck::pod_collect_to_vec(
            &staging
                .get_mapped_range(..)
                .map_err(|e| Error::gpu("reading the readback", e))?,
        );
        staging.unmap();
        Ok(data)
    }

    /// Blocks until the GPU has finished everything submitted so far. wgpu's GL backend waits
    /// at most 4.3 s a call (a fence wait's `u32` of nanoseconds) and then says it timed out,
    /// though the work is only slow (a software adapter on a loaded machine): divgpu waits
    /// again, up to [`GPU_WAIT_LIMIT`] in all, and then fails rather than hang.
    pub(crate) fn wait(&self) -> Result<()> {
        let start = Instant::now();
        loop {
            match self.device.poll(wgpu::PollType::wait_indefinitely()) {
                Ok(_) => return Ok(()),
                Err(wgpu::PollError::Timeout) if start.elapsed() < GPU_WAIT_LIMIT => continue,
                Err(e) => {
                    let waited = start.elapsed().as_secs_f64();
                    return Err(Error::gpu(
                        format!("waiting for the GPU ({waited:.0} s)"),
                        e,
                    ));
                }
            }
        }
    }
}

/// The longest divgpu waits for one submission: far above any of divgpu's (it sizes each
/// submission to take well under a second where it can measure, see `gpu::query`).
pub const GPU_WAIT_LIMIT: Duration = Duration::from_secs(600);

#[cfg(test)]
mod tests {
    use super::nvidia_hint_in;
    use std::collections::HashMap;

    fn touch(root: &std::path::Path, path: &str) {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"{}").unwrap();
    }

    #[test]
    fn an_nvidia_driver_without_its_vulkan_icd_is_named() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        let mut vars: HashMap<&str, String> = HashMap::new();
        let hint = |vars: &HashMap<&str, String>| nvidia_hint_in(root, |k| vars.get(k).cloned());
        // no NVIDIA driver: nothing to say
        touch(root, "usr/share/vulkan/icd.d/lvp_icd.x86_64.json");
        assert_eq!(hint(&vars), None);
        // a driver, Mesa's ICDs only: the capability to ask for
        touch(root, "dev/nvidiactl");
        vars.insert("NVIDIA_DRIVER_CAPABILITIES", "compute,utility".into());
        let said = hint(&vars).expect("a hint");
        assert!(
            said.contains("/dev/nvidiactl") && said.contains("'graphics'"),
            "{said}"
        );
        assert!(said.contains("(it is 'compute,utility')"), "{said}");
        // the ICD in a place the loader reads: nothing to say
        touch(root, "etc/vulkan/icd.d/nvidia_icd.json");
        assert_eq!(hint(&vars), None);
        // the loader's own variable overrides the places, and names a file
        vars.insert("VK_ICD_FILENAMES", "/opt/lvp.json".into());
        assert!(hint(&vars).expect("a hint").contains("/opt/lvp.json"));
        touch(root, "opt/nvidia_icd.json");
        vars.insert(
            "VK_ICD_FILENAMES",
            "/opt/lvp.json:/opt/nvidia_icd.json".into(),
        );
        assert_eq!(hint(&vars), None);
    }
}
