//! The uploaded (or streamed) array, the per-query buffers, the bounded dispatches and the
//! readback.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytemuck::{Pod, Zeroable};

use crate::error::{Error, Result};
use crate::gpu::context::GpuContext;
use crate::gpu::pipelines::{KEY_BYTES, PARAMS_BYTES, WIDE_STATE_BYTES};
use crate::gpu::timer::PassTimer;

const _: () = assert!(std::mem::size_of::<Params>() as u64 == PARAMS_BYTES);
use crate::input::Array;
use crate::query::Plan;
use crate::{Algorithm, Observer};

const SIGN: u64 = 1 << 63;

/// Elements converted per step of an upload (512 KiB of keys).
const UPLOAD_STEP: usize = 1 << 16;

/// Keys queued for upload before the queue is flushed: wgpu stages every write in host memory
/// until a submission completes, and this keeps that staging from growing to a copy of the array.
const UPLOAD_FLUSH_BYTES: u64 = 64 << 20;

/// What one submission aims to take. Each submission is measured and the next one sized from
/// it, so none comes near a driver watchdog (Windows resets a GPU after 2 s), and Ctrl-C and the
/// progress bar are served between submissions.
pub const SUBMIT_TARGET: Duration = Duration::from_millis(100);

/// Elements in the first submission of a query, before anything has been measured.
const FIRST_SLICE: u64 = 1 << 14;

/// Elements of 2^32 and above are counted by the wide pipeline over blocks of this many elements
/// (one state each, 4.5 MiB in all), only over blocks that hold one.
const WIDE_BLOCK: usize = 1 << 14;

/// Steps per element of the first wide dispatch of a block, and the bounds of later ones (each
/// sized, like the slices, from the rate just measured). Every step is loop-free, so one
/// dispatch loops at most `WIDE_MAX_STEPS` + 34 times: an eighth of llvmpipe's cap of 65,535
/// loop iterations per invocation (the budget in `shaders/wide.wgsl`).
const WIDE_FIRST_STEPS: u32 = 1 << 10;
const WIDE_MIN_STEPS: u32 = 1 << 6;
pub const WIDE_MAX_STEPS: u32 = 1 << 13;

/// Arrays whose keys take more than this many bytes are streamed through two chunk buffers
/// instead of being kept on the GPU.
pub const DEFAULT_RESIDENT_BYTES: u64 = 2 << 30;

/// `Params` in `shaders/divisors.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Default, Pod, Zeroable)]
struct Params {
    base: u32,
    end: u32,
    signed_keys: u32,
    num_thresholds: u32,
    threshold: u32,
    naive: u32,
    init: u32,
    steps: u32,
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

/// How an array goes to the GPU.
#[derive(Clone, Copy, Debug)]
pub struct UploadOptions {
    /// Elements per chunk buffer; `None`: the most the adapter's limits allow.
    pub chunk_elements: Option<usize>,
    /// Keep the array on the GPU when its keys take at most this many bytes; stream it through
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

enum Storage<'a> {
    /// Every chunk in its own buffer, uploaded once, reused by every query, with the blocks of
    /// it that hold wide elements.
    Resident(Vec<(wgpu::Buffer, Vec<u32>)>),
    /// Chunks taken from the host array one at a time (straight from its memory map) into two
    /// buffers in turn (a ring), for every query. Each query holds a ring of its own while it
    /// runs, taken from this pool (or made, when queries run side by side) and put back after:
    /// queries from several threads never write each other's buffers.
    Streamed {
        source: Source<'a>,
        rings: Mutex<Vec<Ring>>,
        ring_len: usize,
    },
}

type Ring = [wgpu::Buffer; 2];

/// A ring lent to one query; back to its pool when dropped.
struct Lease<'p> {
    pool: &'p Mutex<Vec<Ring>>,
    ring: Option<Ring>,
}

impl Lease<'_> {
    fn ring(&self) -> &Ring {
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

/// The host array a streamed part reads: the caller's, or one of the two halves of a 128-bit
/// array that the upload made.
enum Source<'a> {
    Borrowed(&'a Array),
    Owned(Box<Array>),
}

impl std::ops::Deref for Source<'_> {
    type Target = Array;

    fn deref(&self) -> &Array {
        match self {
            Source::Borrowed(array) => array,
            Source::Owned(array) => array,
        }
    }
}

/// Elements that share one key type: signed (the value with its sign bit flipped) or unsigned.
struct Part<'a> {
    storage: Storage<'a>,
    chunk_len: usize,
    signed: bool,
    len: usize,
}

/// The array, ready for queries: its keys resident on the GPU or streamed from the host. One
/// part for every array of a 64-bit (or narrower) type; an array of 128-bit values (text holding
/// both negatives and values above 2^63 - 1, which no 64-bit key orders) is two: its negatives
/// with signed keys and the rest with unsigned keys, each answered on its own and added up (the
/// order of the elements does not change any answer).
pub struct GpuArray<'a> {
    parts: Vec<Part<'a>>,
    len: usize,
}

/// Wall-clock times of one GPU query.
#[derive(Clone, Copy, Debug, Default)]
pub struct QueryTimings {
    /// Dispatches, and the uploads of a streamed array.
    pub compute: Duration,
    pub readback: Duration,
    /// The compute passes alone, by timestamp queries on the GPU; `None` where the device has
    /// none.
    pub gpu: Option<Duration>,
}

impl GpuArray<'_> {
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
}

impl Part<'_> {
    fn chunk_count(&self) -> usize {
        self.len.div_ceil(self.chunk_len.max(1))
    }

    fn is_streamed(&self) -> bool {
        matches!(self.storage, Storage::Streamed { .. })
    }

    fn chunk_range(&self, chunk: usize) -> std::ops::Range<usize> {
        let start = chunk * self.chunk_len;
        start..(start + self.chunk_len).min(self.len)
    }
}

impl GpuContext {
    /// The most elements one chunk may hold: one storage binding, one buffer.
    pub fn max_chunk_elements(&self) -> usize {
        let bytes = self
            .limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size);
        (bytes / KEY_BYTES).min(u64::from(u32::MAX)) as usize
    }

    /// Readies `array` for queries: uploaded once when its keys fit `options.resident_bytes`,
    /// streamed otherwise.
    pub fn upload<'a>(&self, array: &'a Array, options: UploadOptions) -> Result<GpuArray<'a>> {
        let max = self.max_chunk_elements();
        let chunk_len = match options.chunk_elements {
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
        let sources = match array.split_sign() {
            Some((negatives, rest)) => vec![
                Source::Owned(Box::new(negatives)),
                Source::Owned(Box::new(rest)),
            ],
            None => vec![Source::Borrowed(array)],
        };
        let parts = sources
            .into_iter()
            .filter(|source| !source.is_empty())
            .map(|source| self.upload_part(source, chunk_len, options.resident_bytes))
            .collect::<Result<Vec<_>>>()?;
        Ok(GpuArray {
            parts,
            len: array.len(),
        })
    }

    fn upload_part<'a>(
        &self,
        source: Source<'a>,
        chunk_len: usize,
        resident_bytes: u64,
    ) -> Result<Part<'a>> {
        let signed = source.dtype().signed;
        let len = source.len();
        let storage = self.check("uploading the array", || {
            if len as u64 * KEY_BYTES <= resident_bytes {
                let chunks = (0..len)
                    .step_by(chunk_len)
                    .map(|start| {
                        let range = start..(start + chunk_len).min(len);
                        let buffer = self.keys_buffer(range.len());
                        let wide = self.write_keys(&buffer, &source, range)?;
                        Ok((buffer, wide))
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(Storage::Resident(chunks))
            } else {
                let ring_len = chunk_len.min(len);
                let ring = [self.keys_buffer(ring_len), self.keys_buffer(ring_len)];
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
            signed,
            len,
        })
    }

    fn keys_buffer(&self, elements: usize) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("divgpu keys"),
            size: elements as u64 * KEY_BYTES,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// Converts `range` of `array` to keys a step at a time (never the whole array in host
    /// memory) and queues them into `buffer` from its start. Returns the blocks of `WIDE_BLOCK`
    /// elements (counted from `range.start`) that hold a value of 2^32 or above.
    fn write_keys(
        &self,
        buffer: &wgpu::Buffer,
        array: &Array,
        range: std::ops::Range<usize>,
    ) -> Result<Vec<u32>> {
        let signed = array.dtype().signed;
        let mut scratch = Vec::with_capacity(UPLOAD_STEP);
        let mut keys: Vec<[u32; 2]> = Vec::with_capacity(UPLOAD_STEP);
        let mut pending = 0;
        let mut wide_blocks: Vec<u32> = Vec::new();
        for step in range.clone().step_by(UPLOAD_STEP) {
            let step_end = (step + UPLOAD_STEP).min(range.end);
            scratch.clear();
            array.decode_into(step..step_end, &mut scratch);
            keys.clear();
            for (i, &x) in scratch.iter().enumerate() {
                if x > i128::from(u32::MAX) {
                    let block = ((step + i - range.start) / WIDE_BLOCK) as u32;
                    if wide_blocks.last() != Some(&block) {
                        wide_blocks.push(block);
                    }
                }
                keys.push(split(key(x, signed)));
            }
            let offset = (step - range.start) as u64 * KEY_BYTES;
            self.queue
                .write_buffer(buffer, offset, bytemuck::cast_slice(&keys));
            pending += keys.len() as u64 * KEY_BYTES;
            if pending >= UPLOAD_FLUSH_BYTES {
                self.queue.submit([]);
                self.wait()?;
                pending = 0;
            }
        }
        Ok(wide_blocks)
    }

    /// Answers every threshold of `plan` over the array.
    pub fn query(
        &self,
        array: &GpuArray<'_>,
        plan: &Plan,
        algorithm: Algorithm,
        observer: &dyn Observer,
    ) -> Result<(Vec<u64>, QueryTimings)> {
        let slots = match algorithm {
            Algorithm::Naive => plan.given().len(),
            Algorithm::Fast => plan.distinct().len(),
        };
        let keys: Vec<Vec<Option<u64>>> = array
            .parts
            .iter()
            .map(|part| {
                let key = |t| threshold_key(t, part.signed);
                match algorithm {
                    Algorithm::Naive => plan.given().iter().map(key).collect(),
                    Algorithm::Fast => plan.distinct().iter().copied().map(key).collect(),
                }
            })
            .collect();
        let work = array
            .parts
            .iter()
            .zip(&keys)
            .map(|(part, keys)| (part.len * passes(keys, algorithm).len()) as u64)
            .sum();
        observer.start(work);
        let mut sums = vec![0u64; slots];
        let mut timings = QueryTimings::default();
        for (part, keys) in array.parts.iter().zip(&keys) {
            let (part_sums, part_timings) = self.run_query(part, keys, algorithm, observer)?;
            for (sum, part_sum) in sums.iter_mut().zip(part_sums) {
                *sum += part_sum;
            }
            timings.compute += part_timings.compute;
            timings.readback += part_timings.readback;
            timings.gpu = match (timings.gpu, part_timings.gpu) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(b),
            };
        }
        let results = match algorithm {
            Algorithm::Naive => sums,
            Algorithm::Fast => plan.answer(&sums),
        };
        Ok((results, timings))
    }

    /// One u64 sum per threshold key over one part: naive, the sum for that threshold; fast,
    /// the bucket sum for that distinct threshold. `None` keys (no element can qualify) are never
    /// dispatched and sum to 0; for fast they are always a prefix of the ascending distinct
    /// thresholds.
    fn run_query(
        &self,
        part: &Part<'_>,
        keys: &[Option<u64>],
        algorithm: Algorithm,
        observer: &dyn Observer,
    ) -> Result<(Vec<u64>, QueryTimings)> {
        let mut timings = QueryTimings::default();
        let skipped = keys.iter().take_while(|k| k.is_none()).count();
        let live = &keys[skipped..];
        let passes = passes(keys, algorithm);
        if part.len == 0 || passes.is_empty() {
            return Ok((vec![0; keys.len()], timings));
        }
        self.check("running the query", || {
            let threshold_words: Vec<[u32; 2]> =
                live.iter().map(|k| split(k.unwrap_or(0))).collect();
            let thresholds = self.init_buffer(
                "divgpu thresholds",
                wgpu::BufferUsages::STORAGE,
                &threshold_words,
            );
            let sums_size = live.len() as u64 * 8;
            let sums = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("divgpu sums"),
                size: sums_size,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let params = self.init_buffer(
                "divgpu params",
                wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                &[Params::default()],
            );
            let bind = |keys: &wgpu::Buffer| {
                self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("divgpu bindings"),
                    layout: &self.pipelines.layout,
                    entries: &[
                        entry(0, keys.as_entire_binding()),
                        entry(1, thresholds.as_entire_binding()),
                        entry(2, sums.as_entire_binding()),
                        entry(3, params.as_entire_binding()),
                        entry(4, self.pipelines.odd_primes.as_entire_binding()),
                    ],
                })
            };
            let (pipeline, num_thresholds) = match algorithm {
                Algorithm::Naive => (&self.pipelines.naive, 1),
                Algorithm::Fast => (&self.pipelines.fast, live.len() as u32),
            };
            let wg = u64::from(self.pipelines.workgroup_size);
            let max_slice = u64::from(self.limits.max_compute_workgroups_per_dimension).pow(2) * wg;
            let mut slice = FIRST_SLICE.min(max_slice);

            let start = Instant::now();
            let mut encoder = self.device.create_command_encoder(&Default::default());
            encoder.clear_buffer(&sums, 0, None);
            self.queue.submit([encoder.finish()]);
            // the wide blocks of the streamed chunk being counted
            let mut streamed_wide = Vec::new();
            let lease = match &part.storage {
                Storage::Resident(_) => None,
                Storage::Streamed {
                    rings, ring_len, ..
                } => Some(self.lease(rings, *ring_len)),
            };
            let bound: Vec<wgpu::BindGroup> = match (&part.storage, &lease) {
                (Storage::Streamed { source, .. }, Some(lease)) => {
                    streamed_wide =
                        self.write_keys(&lease.ring()[0], source, part.chunk_range(0))?;
                    lease.ring().iter().map(&bind).collect()
                }
                (Storage::Resident(chunks), _) => {
                    chunks.iter().map(|(keys, _)| bind(keys)).collect()
                }
                (Storage::Streamed { .. }, None) => unreachable!("a streamed part has a lease"),
            };
            let mut wide: Option<WideState> = None;
            let mut timer = PassTimer::new(self);
            for chunk in 0..part.chunk_count() {
                let range = part.chunk_range(chunk);
                let bind_group = &bound[match part.storage {
                    Storage::Resident(_) => chunk,
                    Storage::Streamed { .. } => chunk % 2,
                }];
                let mut next_wide = Vec::new();
                for (p, &pass) in passes.iter().enumerate() {
                    let mut base = 0u64;
                    while base < range.len() as u64 {
                        if observer.cancelled() {
                            return Err(Error::Cancelled);
                        }
                        let n = slice.min(range.len() as u64 - base);
                        let dispatch = Params {
                            base: base as u32,
                            end: (base + n) as u32,
                            signed_keys: u32::from(part.signed),
                            num_thresholds,
                            threshold: pass.unwrap_or(0),
                            naive: 0,
                            init: 0,
                            steps: 0,
                        };
                        self.queue
                            .write_buffer(&params, 0, bytemuck::bytes_of(&dispatch));
                        let mut encoder = self.device.create_command_encoder(&Default::default());
                        {
                            let mut cpass =
                                encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                                    label: Some("divgpu query"),
                                    timestamp_writes: timer.as_mut().map(PassTimer::next_pass),
                                });
                            cpass.set_pipeline(pipeline);
                            cpass.set_bind_group(0, bind_group, &[]);
                            let (x, y) = self.grid(n.div_ceil(wg));
                            cpass.dispatch_workgroups(x, y, 1);
                        }
                        let submitted = Instant::now();
                        self.queue.submit([encoder.finish()]);
                        let last_of_chunk = p + 1 == passes.len() && base + n == range.len() as u64;
                        if let (true, Storage::Streamed { source, .. }, Some(lease)) =
                            (last_of_chunk, &part.storage, &lease)
                        {
                            // Convert and queue the next chunk while the GPU works on this one;
                            // the queue orders the write after the work that reads the buffer.
                            if chunk + 1 < part.chunk_count() {
                                next_wide = self.write_keys(
                                    &lease.ring()[(chunk + 1) % 2],
                                    source,
                                    part.chunk_range(chunk + 1),
                                )?;
                            }
                        }
                        self.wait()?;
                        if let Some(timer) = &mut timer {
                            timer.collect_if_full(self)?;
                        }
                        slice = next_slice(slice, n, submitted.elapsed(), wg, max_slice);
                        observer.advance(n);
                        base += n;
                    }
                    let blocks = match &part.storage {
                        Storage::Resident(chunks) => &chunks[chunk].1,
                        Storage::Streamed { .. } => &streamed_wide,
                    };
                    for &block in blocks {
                        let state = wide.get_or_insert_with(|| self.wide_state());
                        let start = block as usize * WIDE_BLOCK;
                        let elements = start..(start + WIDE_BLOCK).min(range.len());
                        let template = Params {
                            base: elements.start as u32,
                            end: elements.end as u32,
                            signed_keys: u32::from(part.signed),
                            num_thresholds,
                            threshold: pass.unwrap_or(0),
                            naive: u32::from(pass.is_some()),
                            init: 0,
                            steps: 0,
                        };
                        self.run_wide(state, bind_group, &params, template, &mut timer, observer)?;
                    }
                }
                if part.is_streamed() {
                    streamed_wide = next_wide;
                }
            }
            if let Some(timer) = &mut timer {
                timer.collect(self)?;
                timings.gpu = Some(timer.total());
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

    /// A ring of two chunk buffers for one streamed query: one the pool has, or a new one.
    fn lease<'p>(&self, pool: &'p Mutex<Vec<Ring>>, ring_len: usize) -> Lease<'p> {
        let spare = pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let ring =
            spare.unwrap_or_else(|| [self.keys_buffer(ring_len), self.keys_buffer(ring_len)]);
        Lease {
            pool,
            ring: Some(ring),
        }
    }

    /// The wide pipeline's buffers, made when a query first meets a wide element.
    fn wide_state(&self) -> WideState {
        let buffer = |label, size, usage| {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage,
                mapped_at_creation: false,
            })
        };
        let states = buffer(
            "divgpu wide states",
            WIDE_BLOCK as u64 * WIDE_STATE_BYTES,
            wgpu::BufferUsages::STORAGE,
        );
        let pending = buffer(
            "divgpu wide pending",
            4,
            wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
        );
        let staging = buffer(
            "divgpu wide pending readback",
            4,
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        );
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("divgpu wide bindings"),
            layout: &self.pipelines.wide_layout,
            entries: &[
                entry(0, states.as_entire_binding()),
                entry(1, pending.as_entire_binding()),
            ],
        });
        WideState {
            steps: WIDE_FIRST_STEPS,
            bind_group,
            pending,
            staging,
            _states: states,
        }
    }

    /// Counts the wide elements of `template.base..template.end` (one block) into the sums:
    /// dispatches of at most `state.steps` steps per element, the first starting every state
    /// from its key, until none is left unfinished. The steps follow the measured rate like the
    /// slices.
    fn run_wide(
        &self,
        state: &mut WideState,
        keys: &wgpu::BindGroup,
        params: &wgpu::Buffer,
        template: Params,
        timer: &mut Option<PassTimer>,
        observer: &dyn Observer,
    ) -> Result<()> {
        let pipeline = self.pipelines.wide(&self.device);
        let groups = u64::from(template.end - template.base)
            .div_ceil(u64::from(self.pipelines.workgroup_size));
        let mut init = 1;
        loop {
            if observer.cancelled() {
                return Err(Error::Cancelled);
            }
            let dispatch = Params {
                init,
                steps: state.steps,
                ..template
            };
            self.queue
                .write_buffer(params, 0, bytemuck::bytes_of(&dispatch));
            let mut encoder = self.device.create_command_encoder(&Default::default());
            encoder.clear_buffer(&state.pending, 0, None);
            {
                let mut cpass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("divgpu wide"),
                    timestamp_writes: timer.as_mut().map(PassTimer::next_pass),
                });
                cpass.set_pipeline(pipeline);
                cpass.set_bind_group(0, keys, &[]);
                cpass.set_bind_group(1, &state.bind_group, &[]);
                let (x, y) = self.grid(groups);
                cpass.dispatch_workgroups(x, y, 1);
            }
            encoder.copy_buffer_to_buffer(&state.pending, 0, &state.staging, 0, 4);
            let submitted = Instant::now();
            self.queue.submit([encoder.finish()]);
            let unfinished: Vec<u32> = self.map_read(&state.staging)?;
            if let Some(timer) = timer {
                timer.collect_if_full(self)?;
            }
            state.steps = next_steps(state.steps, submitted.elapsed());
            init = 0;
            if unfinished[0] == 0 {
                return Ok(());
            }
        }
    }

    /// A 2D grid of at least `groups` workgroups within the per-dimension limit.
    fn grid(&self, groups: u64) -> (u32, u32) {
        let per_dim = u64::from(self.limits.max_compute_workgroups_per_dimension);
        let x = groups.min(per_dim).max(1);
        (x as u32, groups.div_ceil(x) as u32)
    }

    fn init_buffer<T: Pod>(
        &self,
        label: &str,
        usage: wgpu::BufferUsages,
        data: &[T],
    ) -> wgpu::Buffer {
        let bytes: &[u8] = bytemuck::cast_slice(data);
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
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

/// The passes one chunk takes for these threshold keys: naive, every live threshold on its own
/// (its index among the live ones); fast, all buckets at once, marked by `None`.
fn passes(keys: &[Option<u64>], algorithm: Algorithm) -> Vec<Option<u32>> {
    let skipped = keys.iter().take_while(|k| k.is_none()).count();
    let live = &keys[skipped..];
    match algorithm {
        Algorithm::Naive => (0..live.len() as u32)
            .filter(|&t| live[t as usize].is_some())
            .map(Some)
            .collect(),
        Algorithm::Fast if live.is_empty() => Vec::new(),
        Algorithm::Fast => vec![None],
    }
}

/// The next wide dispatch's steps per element: what `SUBMIT_TARGET` allows at the rate just
/// measured, at most 4 times the last, within `WIDE_MIN_STEPS..=WIDE_MAX_STEPS`.
fn next_steps(steps: u32, took: Duration) -> u32 {
    let wanted = f64::from(steps) * SUBMIT_TARGET.as_secs_f64() / took.as_secs_f64().max(1e-6);
    (wanted as u64)
        .min(u64::from(steps) * 4)
        .clamp(u64::from(WIDE_MIN_STEPS), u64::from(WIDE_MAX_STEPS)) as u32
}

/// The wide pipeline's group 1, what reads its count of unfinished elements back, and the steps
/// per element of the next dispatch.
struct WideState {
    steps: u32,
    bind_group: wgpu::BindGroup,
    pending: wgpu::Buffer,
    staging: wgpu::Buffer,
    _states: wgpu::Buffer,
}

/// The next submission's element count: what `SUBMIT_TARGET` allows at the rate just measured,
/// at most 4 times the last (work per element varies), at least one workgroup, within the grid.
fn next_slice(slice: u64, done: u64, took: Duration, wg: u64, max_slice: u64) -> u64 {
    if done < slice {
        return slice; // a chunk's tail says little about the rate
    }
    let rate = done as f64 / took.as_secs_f64().max(1e-6);
    let wanted = (rate * SUBMIT_TARGET.as_secs_f64()) as u64;
    wanted.min(slice * 4).clamp(wg, max_slice) / wg * wg
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

    #[test]
    fn slices_follow_the_measured_rate_within_bounds() {
        let ms = Duration::from_millis;
        // 1 Mi elements in 10 ms: 100 ms would allow 10 Mi, but growth is capped at 4x
        assert_eq!(next_slice(1 << 20, 1 << 20, ms(10), 256, 1 << 40), 4 << 20);
        // 1 Mi elements in 1 s: a tenth of that
        assert_eq!(
            next_slice(1 << 20, 1 << 20, ms(1000), 256, 1 << 40),
            104_704
        );
        // never below one workgroup, never above the grid
        assert_eq!(next_slice(256, 256, ms(100_000), 256, 1 << 40), 256);
        assert_eq!(next_slice(1 << 20, 1 << 20, ms(1), 256, 1 << 21), 1 << 21);
        // a short tail keeps the slice
        assert_eq!(next_slice(1 << 20, 5, ms(1), 256, 1 << 40), 1 << 20);
    }

    #[test]
    fn wide_steps_follow_the_measured_rate_within_bounds() {
        let ms = Duration::from_millis;
        assert_eq!(next_steps(1000, ms(50)), 2000);
        assert_eq!(next_steps(1000, ms(1)), 4000); // growth capped at 4x
        assert_eq!(next_steps(1000, ms(1000)), 100);
        assert_eq!(next_steps(1000, ms(100_000)), WIDE_MIN_STEPS);
        assert_eq!(next_steps(WIDE_MAX_STEPS, ms(1)), WIDE_MAX_STEPS);
    }
}
