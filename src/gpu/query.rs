//! Queries: the threshold keys per part, bounded dispatches over each chunk, and the sums read
//! back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::divisors::DivisorTable;
use crate::error::{Error, Result};
use crate::gpu::array::{GpuArray, Lease, Part, Storage, UploadOptions};
use crate::gpu::context::GpuContext;
use crate::gpu::keys::{split, threshold_key};
use crate::gpu::pipelines::{LOCAL_BUCKETS, PARAMS_BYTES};
use crate::gpu::table::MAX_TOP;
use crate::gpu::timer::PassTimer;
use crate::gpu::wide::{WideState, WIDE_BLOCK};
use crate::input::{Array, Integers};
use crate::query::Plan;
use crate::{Algorithm, Observer};

const _: () = assert!(std::mem::size_of::<Params>() as u64 == PARAMS_BYTES);

/// What one submission aims to take. Each submission is measured and the next one sized from
/// it, so none comes near a driver watchdog (Windows resets a GPU after 2 s), and Ctrl-C and the
/// progress bar are served between submissions.
pub const SUBMIT_TARGET: Duration = Duration::from_millis(100);

/// Elements in the first submission of a query, before anything has been measured.
const FIRST_SLICE: u64 = 1 << 14;

/// The divisor table on the GPU (binding 6): c(n) for n in 0..=top, two u16 counts a word.
pub(super) struct DivisorTableBuffer {
    pub(super) top: u32,
    buffer: wgpu::Buffer,
}

/// The table's top for a `fast` query over `elements` elements whose largest threshold is
/// `max_threshold`: as far as the thresholds reach (no element above them is counted), at most
/// `limit`, and at most [`DivisorTable::ENTRIES_PER_ELEMENT`] entries per element (a small
/// array is factored for less). `None` when no element needs one.
pub(super) fn table_top(elements: usize, max_threshold: i128, limit: u64) -> Option<u32> {
    let top = u64::try_from(max_threshold)
        .ok()?
        .min(limit)
        .min(DivisorTable::ENTRIES_PER_ELEMENT * elements as u64)
        .min(u64::from(u32::MAX));
    (top >= 2).then_some(top as u32)
}

mirror! {
    /// `Params` in `shaders/divisors.wgsl`.
    pub(super) struct Params {
        pub(super) base: u32,
        pub(super) end: u32,
        pub(super) signed_keys: u32,
        pub(super) num_thresholds: u32,
        pub(super) threshold: u32,
        pub(super) naive: u32,
        pub(super) init: u32,
        pub(super) steps: u32,
        pub(super) key_width: u32,
        pub(super) hist_top: u32,
        pub(super) _pad: [u32; 2],
    }
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

impl GpuContext {
    /// Answers every threshold of `plan` over the array.
    pub fn query(
        &self,
        array: &GpuArray,
        plan: &Plan,
        algorithm: Algorithm,
        observer: &dyn Observer,
    ) -> Result<(Vec<u64>, QueryTimings)> {
        crate::guard::point("gpu-query");
        // the buffers made here are dropped before the turn ends
        let _turn = self.turn();
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
        let table = match algorithm {
            Algorithm::Fast => self.divisor_table(array, plan)?,
            Algorithm::Naive => None,
        };
        let mut sums = vec![0u64; slots];
        let mut timings = QueryTimings::default();
        for (part, keys) in array.parts.iter().zip(&keys) {
            let (part_sums, part_timings) =
                self.run_query(part, keys, plan, algorithm, table.as_deref(), observer)?;
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

    /// The array's divisor table for `plan`, built once by the GPU's sieve and kept with the
    /// array (a later query that reaches further builds a larger one, up to the limit).
    fn divisor_table(
        &self,
        array: &GpuArray,
        plan: &Plan,
    ) -> Result<Option<Arc<DivisorTableBuffer>>> {
        // the sieve's u32 counts within one binding
        let limit = u64::from(MAX_TOP)
            .min(self.limits.max_storage_buffer_binding_size / 4 - 2)
            .min(self.limits.max_buffer_size / 4 - 2);
        let Some(top) = table_top(array.len(), plan.max(), limit) else {
            return Ok(None);
        };
        let mut kept = array.table.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(table) = kept.as_ref().filter(|t| t.top >= top) {
            return Ok(Some(table.clone()));
        }
        let buffer = self.sieve_table(top)?;
        let table = Arc::new(DivisorTableBuffer { top, buffer });
        *kept = Some(table.clone());
        Ok(Some(table))
    }

    /// c(v) for each of `values` (ascending, distinct, each `>= 2`), computed on the GPU for a
    /// value index ([`crate::index`]): the values are uploaded as an array of their own and
    /// answered by `fast` with themselves as the thresholds, so that sum `k` is
    /// `c(v_0) + ... + c(v_k)` and each `c` is one step. The same pipelines, tables and wide
    /// path as every other query; nothing new runs on the GPU. `observer` can stop it; its
    /// progress is the caller's to report.
    pub fn divisor_counts(&self, values: &[u64], observer: &dyn Observer) -> Result<Vec<u32>> {
        debug_assert!(values.windows(2).all(|w| w[0] < w[1]) && values.first() >= Some(&2));
        if values.is_empty() {
            return Ok(Vec::new());
        }
        let _turn = self.turn();
        let array = Arc::new(Array::from_u64(values.to_vec()));
        let uploaded = self.upload(&array, UploadOptions::default())?;
        let thresholds = Integers::from(values.iter().map(|&v| i128::from(v)).collect::<Vec<_>>());
        let (sums, _) = self.query(
            &uploaded,
            &Plan::of(&thresholds),
            Algorithm::Fast,
            &CancelOnly(observer),
        )?;
        let mut before = 0u64;
        sums.iter()
            .zip(values)
            .map(|(&sum, &v)| {
                let c = sum
                    .checked_sub(before)
                    .and_then(|c| u32::try_from(c).ok())
                    .filter(|&c| c >= 2)
                    .ok_or_else(|| {
                        Error::Gpu(format!(
                            "the GPU's divisor count of {v} is not a count (running sum {sum} \
                             after {before})"
                        ))
                    })?;
                before = sum;
                Ok(c)
            })
            .collect()
    }

    /// The top of the divisor table `array` keeps, if it has built one.
    pub fn divisor_table_top(&self, array: &GpuArray) -> Option<u32> {
        let kept = array.table.lock().unwrap_or_else(|p| p.into_inner());
        kept.as_ref().map(|t| t.top)
    }

    /// One u64 sum per threshold key over one part: naive, the sum for that threshold; fast,
    /// the bucket sum for that distinct threshold. `None` keys (no element can qualify) are never
    /// dispatched and sum to 0; for fast they are always a prefix of the ascending distinct
    /// thresholds. The part's chunks in order ([`GpuContext::query_chunk`]), then the readback.
    fn run_query(
        &self,
        part: &Part,
        keys: &[Option<u64>],
        plan: &Plan,
        algorithm: Algorithm,
        table: Option<&DivisorTableBuffer>,
        observer: &dyn Observer,
    ) -> Result<(Vec<u64>, QueryTimings)> {
        let table_top = table.map_or(0, |t| t.top);
        let table_buffer = table.map_or(&self.pipelines.no_table, |t| &t.buffer);
        let skipped = keys.iter().take_while(|k| k.is_none()).count();
        let live = &keys[skipped..];
        let passes = passes(keys, algorithm);
        if part.len == 0 || passes.is_empty() {
            return Ok((vec![0; keys.len()], QueryTimings::default()));
        }
        let hist_top = match algorithm {
            Algorithm::Fast => self.histogram_top(live.len(), table_top, part.len),
            Algorithm::Naive => 0,
        };
        self.check("running the query", || {
            let buffers = self.query_buffers(live, hist_top);
            let (pipeline, num_thresholds) = match algorithm {
                Algorithm::Naive => (&self.pipelines.naive, 1),
                Algorithm::Fast => (&self.pipelines.fast, live.len() as u32),
            };
            let wg = u64::from(self.pipelines.workgroup_size);
            let dispatch = Dispatch {
                part,
                pipeline,
                params: &buffers.params,
                num_thresholds,
                table_top,
                hist_top,
                wg,
                max_slice: u64::from(self.limits.max_compute_workgroups_per_dimension).pow(2) * wg,
            };
            let start = Instant::now();
            let mut encoder = self.device.create_command_encoder(&Default::default());
            encoder.clear_buffer(&buffers.sums, 0, None);
            self.queue.submit([encoder.finish()]);
            let mut bound = self.bind_part(part, &buffers, table_buffer)?;
            // the wide blocks of the streamed chunk being counted
            let mut streamed_wide = std::mem::take(&mut bound.first_wide);
            let mut progress = Progress {
                slice: FIRST_SLICE.min(dispatch.max_slice),
                timer: PassTimer::new(self),
                wide: None,
            };
            for chunk in 0..part.chunk_count() {
                let chunk_of = ChunkOf {
                    chunk,
                    bound: &bound.groups,
                    lease: bound.lease.as_ref(),
                    wide: &streamed_wide,
                };
                let next_wide =
                    self.query_chunk(&dispatch, &mut progress, chunk_of, &passes, observer)?;
                if part.is_streamed() {
                    streamed_wide = next_wide;
                }
            }
            let mut timings = QueryTimings::default();
            if let Some(timer) = &mut progress.timer {
                timer.collect(self)?;
                timings.gpu = Some(timer.total());
            }
            timings.compute = start.elapsed();
            let start = Instant::now();
            let words: Vec<u32> = self.read_back(&buffers.sums, buffers.sums_size)?;
            timings.readback = start.elapsed();
            Ok((
                sums_of(&words, skipped, live.len(), hist_top, plan),
                timings,
            ))
        })
    }

    /// The buffers of one query over one part: the live thresholds' words, the sums (fast: the
    /// bucket sums, then with a histogram one slot per value 0..=`hist_top`), the parameters.
    fn query_buffers(&self, live: &[Option<u64>], hist_top: u32) -> QueryBuffers {
        let threshold_words: Vec<[u32; 2]> = live.iter().map(|k| split(k.unwrap_or(0))).collect();
        let thresholds = self.init_buffer(
            "divgpu thresholds",
            wgpu::BufferUsages::STORAGE,
            &threshold_words,
        );
        let histogram_slots = if hist_top == 0 {
            0
        } else {
            hist_top as u64 + 1
        };
        let sums_size = (live.len() as u64 + histogram_slots) * 8;
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
        QueryBuffers {
            thresholds,
            sums,
            sums_size,
            params,
        }
    }

    /// What a query over `part` binds: a resident part's chunk buffers, or a streamed part's
    /// ring (leased for this query, the first chunk's keys queued into it, and that chunk's
    /// wide blocks), each bound with the query's buffers.
    fn bind_part<'p>(
        &self,
        part: &'p Part,
        buffers: &QueryBuffers,
        table: &wgpu::Buffer,
    ) -> Result<PartBindings<'p>> {
        let bind = |keys: &wgpu::Buffer| self.query_bindings(keys, buffers, table);
        Ok(match &part.storage {
            Storage::Resident(chunks) => PartBindings {
                lease: None,
                groups: chunks.iter().map(|(keys, _)| bind(keys)).collect(),
                first_wide: Vec::new(),
            },
            Storage::Streamed {
                source,
                rings,
                ring_len,
            } => {
                let lease = self.lease(rings, *ring_len, part.key_width as usize);
                let first_wide = self.write_keys(&lease.ring()[0], source, part.chunk_range(0))?;
                PartBindings {
                    groups: lease.ring().iter().map(bind).collect(),
                    lease: Some(lease),
                    first_wide,
                }
            }
        })
    }

    /// The bind group of one chunk buffer of keys with the query's buffers.
    fn query_bindings(
        &self,
        keys: &wgpu::Buffer,
        buffers: &QueryBuffers,
        table: &wgpu::Buffer,
    ) -> wgpu::BindGroup {
        self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("divgpu bindings"),
            layout: &self.pipelines.layout,
            entries: &[
                entry(0, keys.as_entire_binding()),
                entry(1, buffers.thresholds.as_entire_binding()),
                entry(2, buffers.sums.as_entire_binding()),
                entry(3, buffers.params.as_entire_binding()),
                entry(4, self.pipelines.odd_primes.as_entire_binding()),
                entry(6, table.as_entire_binding()),
            ],
        })
    }

    /// Every pass over one chunk: its elements in slices paced by [`next_slice`], then its
    /// wide blocks. On a streamed part the next chunk's keys are converted and queued while the
    /// GPU works on this chunk's last slice; returns that chunk's wide blocks.
    fn query_chunk(
        &self,
        dispatch: &Dispatch<'_>,
        progress: &mut Progress,
        of: ChunkOf<'_>,
        passes: &[Option<u32>],
        observer: &dyn Observer,
    ) -> Result<Vec<u32>> {
        let part = dispatch.part;
        let chunk = of.chunk;
        let range = part.chunk_range(chunk);
        let bind_group = &of.bound[match part.storage {
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
                let n = progress.slice.min(range.len() as u64 - base);
                let submitted = self.dispatch_slice(dispatch, progress, bind_group, pass, base, n);
                let last_of_chunk = p + 1 == passes.len() && base + n == range.len() as u64;
                if let (true, Storage::Streamed { source, .. }, Some(lease)) =
                    (last_of_chunk, &part.storage, of.lease)
                {
                    // the queue orders the write after the work that reads the buffer
                    if chunk + 1 < part.chunk_count() {
                        next_wide = self.write_keys(
                            &lease.ring()[(chunk + 1) % 2],
                            source,
                            part.chunk_range(chunk + 1),
                        )?;
                    }
                }
                self.wait()?;
                if let Some(timer) = &mut progress.timer {
                    timer.collect_if_full(self)?;
                }
                let (wg, max_slice) = (dispatch.wg, dispatch.max_slice);
                progress.slice = next_slice(progress.slice, n, submitted.elapsed(), wg, max_slice);
                observer.advance(n);
                base += n;
            }
            let blocks = match &part.storage {
                Storage::Resident(chunks) => &chunks[chunk].1,
                Storage::Streamed { .. } => of.wide,
            };
            for &block in blocks {
                let state = progress.wide.get_or_insert_with(|| self.wide_state());
                let start = block as usize * WIDE_BLOCK;
                let elements = start..(start + WIDE_BLOCK).min(range.len());
                let template = Params {
                    base: elements.start as u32,
                    end: elements.end as u32,
                    signed_keys: u32::from(part.signed),
                    num_thresholds: dispatch.num_thresholds,
                    threshold: pass.unwrap_or(0),
                    naive: u32::from(pass.is_some()),
                    init: 0,
                    steps: 0,
                    key_width: part.key_width,
                    hist_top: 0,
                    _pad: [0; 2],
                };
                let (params, timer) = (dispatch.params, &mut progress.timer);
                self.run_wide(state, bind_group, params, template, timer, observer)?;
            }
        }
        Ok(next_wide)
    }

    /// Submits one slice, `n` elements from `base` of the chunk bound in `bind_group`, of one
    /// pass (naive: its threshold); returns when it was submitted.
    fn dispatch_slice(
        &self,
        dispatch: &Dispatch<'_>,
        progress: &mut Progress,
        bind_group: &wgpu::BindGroup,
        pass: Option<u32>,
        base: u64,
        n: u64,
    ) -> Instant {
        let params = Params {
            base: base as u32,
            end: (base + n) as u32,
            signed_keys: u32::from(dispatch.part.signed),
            num_thresholds: dispatch.num_thresholds,
            // naive: the threshold; fast: the divisor table's top
            threshold: pass.unwrap_or(dispatch.table_top),
            naive: 0,
            init: 0,
            steps: 0,
            key_width: dispatch.part.key_width,
            hist_top: dispatch.hist_top,
            _pad: [0; 2],
        };
        self.queue
            .write_buffer(dispatch.params, 0, bytemuck::bytes_of(&params));
        let mut encoder = self.device.create_command_encoder(&Default::default());
        {
            let mut cpass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("divgpu query"),
                timestamp_writes: progress.timer.as_mut().map(PassTimer::next_pass),
            });
            cpass.set_pipeline(dispatch.pipeline);
            cpass.set_bind_group(0, bind_group, &[]);
            let (x, y) = self.grid(n.div_ceil(dispatch.wg));
            cpass.dispatch_workgroups(x, y, 1);
        }
        let submitted = Instant::now();
        self.queue.submit([encoder.finish()]);
        submitted
    }

    /// `fast`'s histogram for a query with `buckets` live distinct thresholds over a part of
    /// `elements` elements: the elements of value 2 ..= the returned top add c(x), looked up in
    /// the divisor table, to a slot of their value rather than search the thresholds for their
    /// bucket; the host then adds each value's slot to its bucket. Only with more buckets than
    /// the workgroup sums hold (fewer are searched in workgroup memory) and a table; the top is
    /// at most the table's, one slot per element (the slots are read back), and the sums'
    /// binding. 0: no histogram.
    fn histogram_top(&self, buckets: usize, table_top: u32, elements: usize) -> u32 {
        if buckets <= LOCAL_BUCKETS {
            return 0;
        }
        let binding_slots = self.limits.max_storage_buffer_binding_size / 8;
        let top = u64::from(table_top)
            .min(elements as u64)
            .min(binding_slots.saturating_sub(buckets as u64 + 1));
        if top < 2 {
            0
        } else {
            top as u32
        }
    }

    /// A 2D grid of at least `groups` workgroups within the per-dimension limit.
    pub(super) fn grid(&self, groups: u64) -> (u32, u32) {
        let per_dim = u64::from(self.limits.max_compute_workgroups_per_dimension);
        let x = groups.min(per_dim).max(1);
        (x as u32, groups.div_ceil(x) as u32)
    }
}

/// The buffers one query over one part writes ([`GpuContext::query_buffers`]).
struct QueryBuffers {
    thresholds: wgpu::Buffer,
    sums: wgpu::Buffer,
    sums_size: u64,
    params: wgpu::Buffer,
}

/// What every dispatch of one query over one part shares.
struct Dispatch<'a> {
    part: &'a Part,
    pipeline: &'a wgpu::ComputePipeline,
    params: &'a wgpu::Buffer,
    num_thresholds: u32,
    table_top: u32,
    hist_top: u32,
    /// Invocations per workgroup.
    wg: u64,
    /// The most elements one dispatch's grid covers.
    max_slice: u64,
}

/// What changes as a query goes: the slice the pacing chose, the pass timer, the wide state.
struct Progress {
    slice: u64,
    timer: Option<PassTimer>,
    wide: Option<WideState>,
}

/// What a query over a part binds ([`GpuContext::bind_part`]).
struct PartBindings<'p> {
    /// A streamed part's ring, lent to this query.
    lease: Option<Lease<'p>>,
    /// The bind group of each chunk buffer (a streamed part's: of each buffer of the ring).
    groups: Vec<wgpu::BindGroup>,
    /// A streamed part's first chunk's wide blocks (its keys are queued).
    first_wide: Vec<u32>,
}

/// One chunk of a part, and what its passes bind: the bind groups of the part's chunk buffers
/// (a streamed part's ring), the ring's lease, and (streamed) the chunk's wide blocks.
#[derive(Clone, Copy)]
struct ChunkOf<'a> {
    chunk: usize,
    bound: &'a [wgpu::BindGroup],
    lease: Option<&'a Lease<'a>>,
    wide: &'a [u32],
}

/// The query's sums from the words read back: 0 for the `skipped` keys, the `live` slots, and
/// (fast, with a histogram) each value's slot added to its bucket.
fn sums_of(words: &[u32], skipped: usize, live: usize, hist_top: u32, plan: &Plan) -> Vec<u64> {
    let mut slots = words
        .chunks_exact(2)
        .map(|w| u64::from(w[0]) | (u64::from(w[1]) << 32));
    let mut result = vec![0u64; skipped];
    result.extend(slots.by_ref().take(live));
    if hist_top != 0 {
        add_histogram(&mut result, plan.distinct(), slots);
    }
    result
}

/// Adds `fast`'s histogram, the sums of c(x) over the elements of each value v = 0, 1, ...
/// (slots below 2 are always 0), to the bucket sums in `result`, one per distinct threshold in
/// ascending order: v's sum goes to the bucket of the smallest threshold >= v, and nowhere when
/// v is above them all.
fn add_histogram(result: &mut [u64], distinct: &[i128], histogram: impl Iterator<Item = u64>) {
    let mut bucket = 0;
    for (v, sum) in histogram.enumerate() {
        if sum == 0 {
            continue;
        }
        let v = v as i128;
        // v ascends, and so does its bucket
        while bucket < distinct.len() && distinct[bucket] < v {
            bucket += 1;
        }
        if bucket == distinct.len() {
            break;
        }
        result[bucket] += sum;
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

/// An observer that passes on only the caller's wish to stop: [`GpuContext::divisor_counts`]'s
/// progress is counted in values, the query's in element passes.
struct CancelOnly<'a>(&'a dyn Observer);

impl Observer for CancelOnly<'_> {
    fn cancelled(&self) -> bool {
        self.0.cancelled()
    }
}

pub(super) fn entry(binding: u32, resource: wgpu::BindingResource<'_>) -> wgpu::BindGroupEntry<'_> {
    wgpu::BindGroupEntry { binding, resource }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
