//! The uploaded array, the per-query buffers, the dispatches and the readback.

use std::time::{Duration, Instant};

use bytemuck::{Pod, Zeroable};

use crate::error::{Error, Result};
use crate::gpu::context::GpuContext;
use crate::gpu::pipelines::{KEY_BYTES, PARAMS_BYTES};
use crate::input::Array;
use crate::query::Plan;
use crate::Algorithm;

const SIGN: u64 = 1 << 63;

/// Elements converted per step of the upload (512 KiB of keys).
const UPLOAD_STEP: usize = 1 << 16;

/// Dispatches recorded per submission; the params slots are reused between submissions.
const DISPATCHES_PER_SUBMIT: usize = 1024;

/// `Params` in `shaders/divisors.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    count: u32,
    signed_keys: u32,
    num_thresholds: u32,
    threshold: u32,
}

/// An element or threshold as the shaders compare it: an order-preserving 64-bit key, the
/// value with its sign bit flipped for signed arrays, the value itself for unsigned ones.
fn key(value: i128, signed: bool) -> u64 {
    if signed {
        (value as i64 as u64) ^ SIGN
    } else {
        value as u64
    }
}

/// The key of a threshold, saturated into the array's range; `None` for a threshold below
/// every value the array's type holds (a negative one over an unsigned array), which no
/// element can be at or below.
fn threshold_key(t: i128, signed: bool) -> Option<u64> {
    let (lowest, highest) = if signed {
        (i128::from(i64::MIN), i128::from(i64::MAX))
    } else {
        (0, i128::from(u64::MAX))
    };
    (t >= lowest).then(|| key(t.min(highest), signed))
}

fn split(key: u64) -> [u32; 2] {
    [key as u32, (key >> 32) as u32]
}

/// One storage buffer's worth of the array.
struct Chunk {
    buffer: wgpu::Buffer,
    len: u32,
}

/// The array, uploaded once as keys in chunks that each fit one storage binding.
pub struct GpuArray {
    chunks: Vec<Chunk>,
    signed: bool,
    len: usize,
}

/// Wall-clock milliseconds of one GPU query.
#[derive(Clone, Copy, Debug, Default)]
pub struct QueryTimings {
    pub compute: Duration,
    pub readback: Duration,
}

impl GpuArray {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }
}

impl GpuContext {
    /// The most elements one chunk may hold: one storage binding, one buffer, and no more than
    /// a 2D grid of workgroups can reach.
    pub fn max_chunk_elements(&self) -> usize {
        let bytes = self
            .limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size);
        let grid = u64::from(self.limits.max_compute_workgroups_per_dimension).pow(2)
            * u64::from(self.pipelines.workgroup_size);
        (bytes / KEY_BYTES).min(grid).min(u64::from(u32::MAX)) as usize
    }

    /// Uploads `array` once. `chunk_elements` forces the chunk size (tests, tuning); by default
    /// it is the largest the adapter's limits allow.
    ///
    /// Values above 2^32 - 1 are refused (the shaders count divisors in 32 bits), naming the
    /// first such value.
    pub fn upload(&self, array: &Array, chunk_elements: Option<usize>) -> Result<GpuArray> {
        let max = self.max_chunk_elements();
        let chunk_len = match chunk_elements {
            Some(0) => return Err(Error::Data("--chunk-elements must be at least 1".into())),
            Some(n) if n > max => {
                return Err(Error::Unsupported(format!(
                    "--chunk-elements {n} is above this adapter's limit of {max} elements \
                     (max storage binding {} bytes, max buffer {} bytes)",
                    self.limits.max_storage_buffer_binding_size, self.limits.max_buffer_size
                )))
            }
            Some(n) => n,
            None => max,
        };
        let signed = array.dtype().signed;
        self.check("uploading the array", || {
            let mut chunks = Vec::new();
            let mut scratch = Vec::with_capacity(UPLOAD_STEP);
            let mut keys: Vec<[u32; 2]> = Vec::with_capacity(UPLOAD_STEP);
            for start in (0..array.len()).step_by(chunk_len) {
                let end = (start + chunk_len).min(array.len());
                let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("divgpu keys"),
                    size: (end - start) as u64 * KEY_BYTES,
                    usage: wgpu::BufferUsages::STORAGE,
                    mapped_at_creation: true,
                });
                {
                    let mut view = buffer
                        .get_mapped_range_mut(..)
                        .map_err(|e| Error::Gpu(format!("mapping a keys buffer: {e}")))?;
                    for step in (start..end).step_by(UPLOAD_STEP) {
                        let step_end = (step + UPLOAD_STEP).min(end);
                        scratch.clear();
                        array.decode_into(step..step_end, &mut scratch);
                        keys.clear();
                        for (i, &x) in scratch.iter().enumerate() {
                            if x > u32::MAX as i128 {
                                return Err(Error::Unsupported(format!(
                                    "element {} is {x}: the GPU backend counts divisors of values \
                                     below 2^32 only; use --backend cpu",
                                    step + i
                                )));
                            }
                            keys.push(split(key(x, signed)));
                        }
                        let at = (step - start) * KEY_BYTES as usize;
                        view.slice(at..at + keys.len() * KEY_BYTES as usize)
                            .copy_from_slice(bytemuck::cast_slice(&keys));
                    }
                }
                buffer.unmap();
                chunks.push(Chunk {
                    buffer,
                    len: (end - start) as u32,
                });
            }
            Ok(chunks)
        })
        .map(|chunks| GpuArray {
            chunks,
            signed,
            len: array.len(),
        })
    }

    /// Answers every threshold of `plan` over the uploaded array.
    pub fn query(
        &self,
        array: &GpuArray,
        plan: &Plan,
        algorithm: Algorithm,
    ) -> Result<(Vec<u64>, QueryTimings)> {
        match algorithm {
            Algorithm::Naive => {
                let keys: Vec<Option<u64>> = plan
                    .given()
                    .iter()
                    .map(|&t| threshold_key(t, array.signed))
                    .collect();
                let (sums, timings) = self.run_dispatches(array, &keys, Algorithm::Naive)?;
                Ok((sums, timings))
            }
            Algorithm::Fast => {
                let keys: Vec<Option<u64>> = plan
                    .distinct()
                    .iter()
                    .map(|&t| threshold_key(t, array.signed))
                    .collect();
                let (buckets, timings) = self.run_dispatches(array, &keys, Algorithm::Fast)?;
                Ok((plan.answer(&buckets), timings))
            }
        }
    }

    /// One u64 sum per threshold key: naive, the sum for that threshold; fast, the bucket sum
    /// for that distinct threshold. `None` keys (no element can qualify) are never dispatched and
    /// sum to 0; for fast they are always a prefix of the ascending distinct thresholds.
    fn run_dispatches(
        &self,
        array: &GpuArray,
        keys: &[Option<u64>],
        algorithm: Algorithm,
    ) -> Result<(Vec<u64>, QueryTimings)> {
        let mut timings = QueryTimings::default();
        let skipped = keys.iter().take_while(|k| k.is_none()).count();
        let live = &keys[skipped..];
        if array.is_empty() || live.is_empty() {
            return Ok((vec![0; keys.len()], timings));
        }
        self.check("running the query", || {
            let threshold_words: Vec<[u32; 2]> =
                live.iter().map(|k| split(k.unwrap_or(0))).collect();
            let thresholds = self.storage_buffer("divgpu thresholds", &threshold_words);
            let sums_size = live.len() as u64 * 8;
            let sums = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("divgpu sums"),
                size: sums_size,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let wg = u64::from(self.pipelines.workgroup_size);
            let signed_keys = u32::from(array.signed);
            let dispatches: Vec<(usize, Params)> = match algorithm {
                Algorithm::Naive => (0..live.len())
                    .filter(|&t| live[t].is_some())
                    .flat_map(|t| {
                        array.chunks.iter().enumerate().map(move |(c, chunk)| {
                            let params = Params {
                                count: chunk.len,
                                signed_keys,
                                num_thresholds: 1,
                                threshold: t as u32,
                            };
                            (c, params)
                        })
                    })
                    .collect(),
                Algorithm::Fast => (0..array.chunks.len())
                    .map(|c| {
                        let params = Params {
                            count: array.chunks[c].len,
                            signed_keys,
                            num_thresholds: live.len() as u32,
                            threshold: 0,
                        };
                        (c, params)
                    })
                    .collect(),
            };
            let pipeline = match algorithm {
                Algorithm::Naive => &self.pipelines.naive,
                Algorithm::Fast => &self.pipelines.fast,
            };
            let stride =
                u64::from(self.limits.min_uniform_buffer_offset_alignment).max(PARAMS_BYTES);
            let slots = dispatches.len().min(DISPATCHES_PER_SUBMIT);
            let params_buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("divgpu params"),
                size: slots as u64 * stride,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let bind_groups: Vec<wgpu::BindGroup> = array
                .chunks
                .iter()
                .map(|chunk| {
                    self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                        label: Some("divgpu chunk bindings"),
                        layout: &self.pipelines.layout,
                        entries: &[
                            entry(0, chunk.buffer.as_entire_binding()),
                            entry(1, thresholds.as_entire_binding()),
                            entry(2, sums.as_entire_binding()),
                            entry(
                                3,
                                wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                                    buffer: &params_buffer,
                                    offset: 0,
                                    size: wgpu::BufferSize::new(PARAMS_BYTES),
                                }),
                            ),
                        ],
                    })
                })
                .collect();

            let start = Instant::now();
            let mut encoder = self.device.create_command_encoder(&Default::default());
            encoder.clear_buffer(&sums, 0, None);
            self.queue.submit([encoder.finish()]);
            for batch in dispatches.chunks(DISPATCHES_PER_SUBMIT) {
                let mut slots = vec![0u8; batch.len() * stride as usize];
                for (i, (_, params)) in batch.iter().enumerate() {
                    let at = i * stride as usize;
                    slots[at..at + PARAMS_BYTES as usize]
                        .copy_from_slice(bytemuck::bytes_of(params));
                }
                self.queue.write_buffer(&params_buffer, 0, &slots);
                let mut encoder = self.device.create_command_encoder(&Default::default());
                {
                    let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: Some("divgpu query"),
                        timestamp_writes: None,
                    });
                    pass.set_pipeline(pipeline);
                    for (i, (chunk, params)) in batch.iter().enumerate() {
                        let offset = (i as u64 * stride) as u32;
                        pass.set_bind_group(0, &bind_groups[*chunk], &[offset]);
                        let (x, y) = self.grid(u64::from(params.count).div_ceil(wg));
                        pass.dispatch_workgroups(x, y, 1);
                    }
                }
                self.queue.submit([encoder.finish()]);
                // The next batch rewrites the params slots: this one must be done with them.
                self.wait()?;
            }
            timings.compute = start.elapsed();

            let start = Instant::now();
            let words: Vec<u32> = self.read_back(&sums, sums_size)?;
            timings.readback = start.elapsed();
            let mut result = vec![0u64; skipped];
            result.extend(
                words
                    .chunks_exact(2)
                    .map(|w| u64::from(w[0]) | (u64::from(w[1]) << 32)),
            );
            Ok((result, timings))
        })
    }

    /// A 2D grid of at least `groups` workgroups within the per-dimension limit.
    fn grid(&self, groups: u64) -> (u32, u32) {
        let per_dim = u64::from(self.limits.max_compute_workgroups_per_dimension);
        let x = groups.min(per_dim).max(1);
        (x as u32, groups.div_ceil(x) as u32)
    }

    fn storage_buffer<T: Pod>(&self, label: &str, data: &[T]) -> wgpu::Buffer {
        let bytes: &[u8] = bytemuck::cast_slice(data);
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.len() as u64,
            usage: wgpu::BufferUsages::STORAGE,
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

    /// Copies `size` bytes of `source` into a mappable buffer and reads them on the host.
    fn read_back<T: Pod>(&self, source: &wgpu::Buffer, size: u64) -> Result<Vec<T>> {
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("divgpu readback"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(source, 0, &staging, 0, size);
        self.queue.submit([encoder.finish()]);
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.wait()?;
        rx.recv()
            .map_err(|_| Error::Gpu("the readback was never mapped".into()))?
            .map_err(|e| Error::Gpu(format!("mapping the readback: {e}")))?;
        let data = bytemuck::pod_collect_to_vec(
            &staging
                .get_mapped_range(..)
                .map_err(|e| Error::Gpu(format!("reading the readback: {e}")))?,
        );
        staging.unmap();
        Ok(data)
    }
}

fn entry(binding: u32, resource: wgpu::BindingResource<'_>) -> wgpu::BindGroupEntry<'_> {
    wgpu::BindGroupEntry { binding, resource }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_preserve_order() {
        let signed = [i64::MIN as i128, -5, -1, 0, 1, 2, 1 << 40, i64::MAX as i128];
        for w in signed.windows(2) {
            assert!(key(w[0], true) < key(w[1], true), "{w:?}");
        }
        let unsigned = [0, 1, 2, 1 << 40, u64::MAX as i128];
        for w in unsigned.windows(2) {
            assert!(key(w[0], false) < key(w[1], false), "{w:?}");
        }
    }

    #[test]
    fn thresholds_saturate_into_the_arrays_range() {
        assert_eq!(threshold_key(-1, false), None);
        assert_eq!(threshold_key(0, false), Some(0));
        assert_eq!(threshold_key(u64::MAX as i128, true), Some(u64::MAX));
        assert_eq!(threshold_key(-1, true), Some(SIGN - 1));
        assert_eq!(threshold_key(i128::from(i64::MIN) - 1, true), None);
        assert_eq!(
            threshold_key(i128::from(u64::MAX) + 1, false),
            Some(u64::MAX)
        );
    }
}
