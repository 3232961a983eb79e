//! The wgpu backend, in layers that each use only those above them (no module uses one that
//! uses it):
//!
//! - `buffers` (buffer helpers that need only a device), `keys` (elements and thresholds as
//!   the shaders compare them) and [`select`] (which adapter a request names);
//! - [`pipelines`]: the WGSL shaders and their compute pipelines;
//! - [`context`]: the instance, the adapters, the device and queue ([`GpuContext`]), the GL turn;
//! - [`registry`]: one device per adapter per process;
//! - `timer` (the passes' timestamps) and `dispatch` (`Params`, one compute pass, the pacing);
//! - [`table`] (`fast`'s divisor table, by the GPU's sieve) and [`wide`] (the elements of 2^32
//!   and above, stepped to the end);
//! - [`mod@array`]: the array uploaded once ([`GpuArray`]), resident or streamed;
//! - `query`: a query's dispatches over every chunk, and the sums read back.
//!
//! [`GpuContext`]'s methods are the device's alone; each other part is its own type or
//! functions that take the device (`&GpuContext`).

/// Declares a struct that mirrors a WGSL struct the host writes into a uniform or storage
/// buffer (`#[repr(C)]`, `Pod`), with `MEMBERS`: each member's name and byte offset, which
/// `tests/shaders.rs` checks member by member against naga's layout of the WGSL struct.
macro_rules! mirror {
    ($(#[$meta:meta])* $vis:vis struct $name:ident { $($fvis:vis $field:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
        $vis struct $name {
            $($fvis $field: $ty,)*
        }

        impl $name {
            /// Each member's name and byte offset, in order.
            pub(crate) const MEMBERS: &'static [(&'static str, usize)] =
                &[$((stringify!($field), std::mem::offset_of!($name, $field)),)*];
        }
    };
}

pub mod array;
mod buffers;
pub mod context;
mod dispatch;
mod keys;
pub mod pipelines;
mod query;
pub mod registry;
pub mod select;
pub mod table;
mod timer;
pub mod wide;

pub use array::{GpuArray, UploadOptions};
pub use context::{AdapterSummary, GpuContext, Turn};
pub use query::{divisor_counts, query, QueryTimings};
pub use table::sieve_counts;

use serde::Serialize;

/// A Rust struct that mirrors a WGSL one: its name (the WGSL struct's), each member's name and
/// byte offset, and its size.
pub type Mirror = (&'static str, &'static [(&'static str, usize)], usize);

/// Every struct the host writes for the shaders, for `tests/shaders.rs` to check against the
/// WGSL (`Wide`, the wide pipeline's per-element state, is the GPU's alone: the host only sizes
/// its buffer, by `pipelines::WIDE_STATE_BYTES`, which that test checks too).
pub fn mirrors() -> [Mirror; 2] {
    use std::mem::size_of;
    [
        (
            "Params",
            dispatch::Params::MEMBERS,
            size_of::<dispatch::Params>(),
        ),
        (
            "SieveParams",
            table::SieveParams::MEMBERS,
            size_of::<table::SieveParams>(),
        ),
    ]
}

/// One line of `divgpu devices`.
#[derive(Clone, Debug, Serialize)]
pub struct DeviceReport {
    /// The adapter's number, from 0 in the order wgpu lists them: `--adapter` takes it.
    pub index: usize,
    #[serde(flatten)]
    pub adapter: AdapterSummary,
    /// `bus:device.function` with its domain (`0000:01:00.0`), where the backend says it
    /// (Vulkan with `VK_EXT_pci_bus_info`): `--adapter` takes it too.
    pub pci_bus_id: Option<String>,
    pub max_storage_binding_bytes: u64,
    pub max_buffer_bytes: u64,
    pub shader_int64: bool,
    pub timestamp_query: bool,
}

/// Every adapter wgpu sees (restricted by `WGPU_BACKEND` when it is set); [`Error::Forked`]
/// in a process forked after its parent opened a GPU ([`context::instance`]).
///
/// [`Error::Forked`]: crate::Error::Forked
pub fn devices() -> crate::Result<Vec<DeviceReport>> {
    Ok(context::adapters(context::instance()?)
        .iter()
        .enumerate()
        .map(|(index, a)| {
            let limits = a.limits();
            let features = a.features();
            let info = a.get_info();
            DeviceReport {
                index,
                pci_bus_id: select::BusId::parse(&info.device_pci_bus_id).map(|b| b.to_string()),
                adapter: AdapterSummary::of(&info),
                max_storage_binding_bytes: limits.max_storage_buffer_binding_size,
                max_buffer_bytes: limits.max_buffer_size,
                shader_int64: features.contains(wgpu::Features::SHADER_INT64),
                timestamp_query: features.contains(wgpu::Features::TIMESTAMP_QUERY),
            }
        })
        .collect())
}
