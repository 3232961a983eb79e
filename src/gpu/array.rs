//! The array on the GPU: its elements uploaded once (resident) or chunk by chunk for every
//! query (streamed), at the array's own width, in one part per key type.

use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::gpu::buffers::zeroed;
use crate::gpu::context::{turn_of, GpuContext};
use crate::gpu::table::{table_top, DivisorTableBuffer};
use crate::gpu::wide::WIDE_BLOCK;
use crate::input::Array;
use crate::query::Plan;

/// Elements per step of an upload (64 Ki: at most 512 KiB; a multiple of 4, so that every step
/// but a range's last starts and ends on a word).
const UPLOAD_STEP: usize = 1 << 16;

/// Bytes queued for upload before the queue is flushed: wgpu stages every write in host memory
/// until a submission completes, and this keeps that staging from growing to a copy of the array.
const UPLOAD_FLUSH_BYTES: u64 = 64 << 20;

/// Arrays whose elements take more than this many bytes are streamed through two chunk buffers
/// instead of being kept on the GPU.
pub const DEFAULT_RESIDENT_BYTES: u64 = 2 << 30;

/// How an array goes to the GPU.
#[derive(Clone, Copy, Debug)]
pub struct UploadOptions {
    /// Elements per chunk buffer; `None`: the most the adapter's limits allow.
    pub chunk_elements: Option<usize>,
    /// Keep the array on the GPU when its elements take at most this many bytes; stream it through
    /// two chunk buffers otherwise.
    pub resident_bytes: u64,
}

impl Default for UploadOptions {
    fn default() -> Self {
        UploadOptions {
            chunk_elements: None,
            resident_bytes: DEFAULT_RESIDENT_BYTES,
        }
    }
}

pub(super) enum Storage {
    /// Every chunk in its own buffer, uploaded once, reused by every query, with the blocks of
    /// it that hold wide elements.
    Resident(Vec<(wgpu::Buffer, Vec<u32>)>),
    /// Chunks taken from the host array one at a time (straight from its memory map) into two
    /// buffers in turn (a ring), for every query. Each query holds a ring of its own while it
    /// runs, taken from this pool (or made, when queries run side by side) and put back after:
    /// queries from several threads never write each other's buffers.
    Streamed {
        source: Arc<Array>,
        rings: Mutex<Vec<Ring>>,
        ring_len: usize,
    },
}

pub(super) type Ring = [wgpu::Buffer; 2];

/// A ring lent to one query; back to its pool when dropped.
pub(super) struct Lease<'p> {
    pool: &'p Mutex<Vec<Ring>>,
    ring: Option<Ring>,
}

impl Lease<'_> {
    pub(super) fn ring(&self) -> &Ring {
        self.ring
            .as_ref()
            .expect("a lease holds its ring until dropped")
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(ring) = self.ring.take() {
            self.pool
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(ring);
        }
    }
}

/// Elements that share one type on the GPU: signed or unsigned, of `key_width` bytes. The
/// buffers hold them as the array does, little-endian (`load_key` in `shaders/divisors.wgsl`
/// reads them as keys).
pub(super) struct Part {
    pub(super) storage: Storage,
    chunk_len: usize,
    pub(super) signed: bool,
    /// Bytes per element: 1, 2, 4 or 8, the array's own width.
    pub(super) key_width: u32,
    pub(super) len: usize,
}

/// The array, ready for queries: its keys resident on the GPU or streamed from the host. One
/// part for every array of a 64-bit (or narrower) type; an array of 128-bit values (text holding
/// both negatives and values above 2^63 - 1, which no 64-bit key orders) is two: its negatives
/// with signed keys and the rest with unsigned keys, each answered on its own and added up (the
/// order of the elements does not change any answer).
pub struct GpuArray {
    pub(super) parts: Vec<Part>,
    len: usize,
    /// `fast`'s divisor table, built by the first query that wants one and kept.
    table: Mutex<Option<Arc<DivisorTableBuffer>>>,
    /// The device's backend: its buffers are released in that backend's turn.
    backend: wgpu::Backend,
}

impl Drop for GpuArray {
    /// Releases the buffers in the device's turn ([`GpuContext::turn`]): on GL, releasing one
    /// takes the context that another thread's query may hold.
    fn drop(&mut self) {
        let _turn = turn_of(self.backend);
        drop(std::mem::take(&mut self.parts));
        drop(
            self.table
                .get_mut()
                .unwrap_or_else(|p| p.into_inner())
                .take(),
        );
    }
}

impl GpuArray {
    /// Readies `array` for queries: uploaded once when its keys fit `options.resident_bytes`,
    /// streamed otherwise (the streamed array keeps a handle on `array`, and reads it at every
    /// query).
    pub fn upload(
        gpu: &GpuContext,
        array: &Arc<Array>,
        options: UploadOptions,
    ) -> Result<GpuArray> {
        let _turn = gpu.turn();
        let sources = match array.split_sign() {
            Some((negatives, rest)) => vec![Arc::new(negatives), Arc::new(rest)],
            None => vec![array.clone()],
        };
        let parts = sources
            .into_iter()
            .filter(|source| !source.is_empty())
            .map(|source| Part::upload(gpu, source, options))
            .collect::<Result<Vec<_>>>()?;
        Ok(GpuArray {
            parts,
            len: array.len(),
            table: Mutex::new(None),
            backend: gpu.adapter_info().backend,
        })
    }

    /// The array's divisor table for `plan`, built once by the GPU's sieve and kept with the
    /// array (a later query that reaches further builds a larger one, up to the limit).
    pub(super) fn divisor_table(
        &self,
        gpu: &GpuContext,
        plan: &Plan,
    ) -> Result<Option<Arc<DivisorTableBuffer>>> {
        let Some(top) = table_top(self.len, plan.max(), DivisorTableBuffer::limit(gpu)) else {
            return Ok(None);
        };
        let mut kept = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(table) = kept.as_ref().filter(|t| t.top >= top) {
            return Ok(Some(table.clone()));
        }
        let table = Arc::new(DivisorTableBuffer::build(gpu, top)?);
        *kept = Some(table.clone());
        Ok(Some(table))
    }

    /// The top of the divisor table this array keeps, if a query has built one.
    pub fn divisor_table_top(&self) -> Option<u32> {
        let kept = self.table.lock().unwrap_or_else(|p| p.into_inner());
        kept.as_ref().map(|t| t.top)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn chunk_count(&self) -> usize {
        self.parts.iter().map(Part::chunk_count).sum()
    }

    pub fn is_streamed(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p.storage, Storage::Streamed { .. }))
    }

    /// Bytes of GPU memory the elements take: every chunk buffer of a resident array, the
    /// rings in the pool of a streamed one (a query running holds one more ring). Tables and
    /// per-query buffers are not counted.
    pub fn buffer_bytes(&self) -> u64 {
        let mut bytes = 0;
        for part in &self.parts {
            bytes += match &part.storage {
                Storage::Resident(chunks) => chunks.iter().map(|(b, _)| b.size()).sum::<u64>(),
                Storage::Streamed { rings, .. } => rings
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .iter()
                    .flatten()
                    .map(wgpu::Buffer::size)
                    .sum(),
            };
        }
        bytes
    }
}

impl Part {
    /// Uploads `source` (of one sign's type, 64 bits or narrower) resident, or readies it to be
    /// streamed.
    fn upload(gpu: &GpuContext, source: Arc<Array>, options: UploadOptions) -> Result<Part> {
        let dtype = source.dtype();
        let width = dtype.width;
        debug_assert!(matches!(width, 1 | 2 | 4 | 8), "128-bit arrays are split");
        let max = gpu.max_chunk_elements(width);
        let chunk_len = match options.chunk_elements {
            Some(0) => {
                return Err(Error::Option {
                    name: "chunk_elements",
                    message: "must be at least 1".into(),
                })
            }
            Some(n) if n > max => {
                return Err(Error::Option {
                    name: "chunk_elements",
                    message: format!(
                        "{n} is above this adapter's limit of {max} elements of {width} bytes \
                         (max storage binding {} bytes, max buffer {} bytes)",
                        gpu.limits.max_storage_buffer_binding_size, gpu.limits.max_buffer_size
                    ),
                })
            }
            Some(n) => n,
            None => max,
        };
        let len = source.len();
        let storage = gpu.check("uploading the array", || {
            if (len * width) as u64 <= options.resident_bytes {
                let chunks = (0..len)
                    .step_by(chunk_len)
                    .map(|start| {
                        let range = start..(start + chunk_len).min(len);
                        let buffer = keys_buffer(gpu, range.len(), width);
                        let wide = write_keys(gpu, &buffer, &source, range)?;
                        Ok((buffer, wide))
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(Storage::Resident(chunks))
            } else {
                let ring_len = chunk_len.min(len);
                let ring = [
                    keys_buffer(gpu, ring_len, width),
                    keys_buffer(gpu, ring_len, width),
                ];
                Ok(Storage::Streamed {
                    source,
                    rings: Mutex::new(vec![ring]),
                    ring_len,
                })
            }
        })?;
        Ok(Part {
            storage,
            chunk_len,
            signed: dtype.signed,
            key_width: width as u32,
            len,
        })
    }

    pub(super) fn chunk_count(&self) -> usize {
        self.len.div_ceil(self.chunk_len.max(1))
    }

    pub(super) fn is_streamed(&self) -> bool {
        matches!(self.storage, Storage::Streamed { .. })
    }

    pub(super) fn chunk_range(&self, chunk: usize) -> std::ops::Range<usize> {
        let start = chunk * self.chunk_len;
        start..(start + self.chunk_len).min(self.len)
    }
}

/// A buffer for `elements` elements of `width` bytes, in whole words.
fn keys_buffer(gpu: &GpuContext, elements: usize, width: usize) -> wgpu::Buffer {
    let size = ((elements * width).div_ceil(4) * 4) as u64;
    let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST;
    zeroed(&gpu.device, "divgpu keys", size, usage)
}

/// Queues `range` of `array` into `buffer` from its start, a step at a time (never the
/// whole array in host memory), at the array's width, little-endian: its own bytes when it
/// stores them so (no conversion at all), decoded and re-encoded otherwise (big-endian or
/// strided arrays). Returns the blocks of `WIDE_BLOCK` elements (counted from
/// `range.start`) that hold a value of 2^32 or above, which only 8-byte elements can.
pub(super) fn write_keys(
    gpu: &GpuContext,
    buffer: &wgpu::Buffer,
    array: &Array,
    range: std::ops::Range<usize>,
) -> Result<Vec<u32>> {
    let dtype = array.dtype();
    let width = dtype.width;
    let raw = array.bytes().filter(|_| !dtype.big_endian || width == 1);
    let mut decoded = Vec::new();
    let mut encoded: Vec<u8> = Vec::new();
    let mut pending = 0;
    let mut wide_blocks: Vec<u32> = Vec::new();
    for step in range.clone().step_by(UPLOAD_STEP) {
        let step_end = (step + UPLOAD_STEP).min(range.end);
        let bytes: &[u8] = match raw {
            Some(all) => &all[step * width..step_end * width],
            None => {
                decoded.clear();
                array.decode_into(step..step_end, &mut decoded);
                encoded.clear();
                for &x in &decoded {
                    // x fits the array's type: its low bytes are its two's complement
                    encoded.extend_from_slice(&x.to_le_bytes()[..width]);
                }
                &encoded
            }
        };
        if width == 8 {
            let first = step - range.start;
            for (i, element) in bytes.chunks_exact(8).enumerate() {
                let v = u64::from_le_bytes(element.try_into().expect("8 bytes"));
                let wide = if dtype.signed {
                    v as i64 > i64::from(u32::MAX)
                } else {
                    v > u64::from(u32::MAX)
                };
                let block = ((first + i) / WIDE_BLOCK) as u32;
                if wide && wide_blocks.last() != Some(&block) {
                    wide_blocks.push(block);
                }
            }
        }
        let offset = ((step - range.start) * width) as u64;
        if bytes.len().is_multiple_of(4) {
            gpu.queue.write_buffer(buffer, offset, bytes);
        } else {
            // a range's last step: padded to a whole word
            let mut padded = bytes.to_vec();
            padded.resize(bytes.len().div_ceil(4) * 4, 0);
            gpu.queue.write_buffer(buffer, offset, &padded);
        }
        pending += bytes.len() as u64;
        if pending >= UPLOAD_FLUSH_BYTES {
            gpu.queue.submit([]);
            gpu.wait()?;
            pending = 0;
        }
    }
    Ok(wide_blocks)
}

/// A ring of two chunk buffers for one streamed query: one the pool has, or a new one.
pub(super) fn lease<'p>(
    gpu: &GpuContext,
    pool: &'p Mutex<Vec<Ring>>,
    ring_len: usize,
    width: usize,
) -> Lease<'p> {
    let spare = pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
    let ring = spare.unwrap_or_else(|| {
        [
            keys_buffer(gpu, ring_len, width),
            keys_buffer(gpu, ring_len, width),
        ]
    });
    Lease {
        pool,
        ring: Some(ring),
    }
}
