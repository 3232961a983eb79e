//! Buffer helpers that need only a device (a leaf: every other GPU module may use it).

use bytemuck::Pod;

/// A buffer of `device` holding `data`, written while mapped at creation (no queue involved).
pub(crate) fn init_buffer<T: Pod>(
    device: &wgpu::Device,
    label: &str,
    usage: wgpu::BufferUsages,
    data: &[T],
) -> wgpu::Buffer {
    let bytes: &[u8] = bytemuck::cast_slice(data);
    let buffer = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes.len() as u64,
        usage,
        mapped_at_creation: true,
    });
    buffer
        .slice(..)
        .get_mapped_range_mut()
        .expect("a buffer mapped at creation is mapped")
        .slice(..)
        .copy_from_slice(bytes);
    buffer.unmap();
    buffer
}

/// A buffer of `device` of `size` bytes, zeroed (as wgpu makes every buffer).
pub(crate) fn zeroed(
    device: &wgpu::Device,
    label: &str,
    size: u64,
    usage: wgpu::BufferUsages,
) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size,
        usage,
        mapped_at_creation: false,
    })
}

/// One entry of a bind group.
pub(crate) fn entry(binding: u32, resource: wgpu::BindingResource<'_>) -> wgpu::BindGroupEntry<'_> {
    wgpu::BindGroupEntry { binding, resource }
}
