//! Queries: the threshold keys per part, bounded dispatches over each chunk, and the sums read
//! back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, GpuError, Result};
use crate::gpu::array::{lease, write_keys, GpuArray, Lease, Part, Storage, UploadOptions};
use crate::gpu::buffers::{entry, zeroed};
use crate::gpu::context::GpuContext;
use crate::gpu::dispatch::{next_slice, record_pass, Params, FIRST_SLICE};
use crate::gpu::keys::{split, threshold_key};
use crate::gpu::pipelines::LOCAL_BUCKETS;
use crate::gpu::table::DivisorTableBuffer;
use crate::gpu::timer::PassTimer;
use crate::gpu::wide::{WideState, WIDE_BLOCK};
use crate::input::{Array, Integers};
use crate::query::Plan;
use crate::{Algorithm, Observer};

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

impl QueryTimings {
    fn add(&mut self, other: QueryTimings) {
        self.compute += other.compute;
        self.readback += other.readback;
        self.gpu = match (self.gpu, other.gpu) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
    }
}

/// Answers every threshold of `plan` over `array` (uploaded to `gpu`).
pub fn query(
    gpu: &GpuContext,
    array: &GpuArray,
    plan: &Plan,
    algorithm: Algorithm,
    observer: &dyn Observer,
) -> Result<(Vec<u64>, QueryTimings)> {
    crate::guard::point("gpu-query");
    // the buffers made here are dropped before the turn ends
    let _turn = gpu.turn();
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
        Algorithm::Fast => array.divisor_table(gpu, plan)?,
        Algorithm::Naive => None,
    };
    let mut sums = vec![0u64; slots];
    let mut timings = QueryTimings::default();
    for (part, keys) in array.parts.iter().zip(&keys) {
        let of = PartQuery {
            part,
            keys,
            plan,
            algorithm,
            table: table.as_deref(),
        };
        let (part_sums, part_timings) = run_query(gpu, of, observer)?;
        for (sum, part_sum) in sums.iter_mut().zip(part_sums) {
            *sum += part_sum;
        }
        timings.add(part_timings);
    }
    let results = match algorithm {
        Algorithm::Naive => sums,
        Algorithm::Fast => plan.answer(&sums),
    };
    Ok((results, timings))
}

/// c(v) for each of `values` (ascending, distinct, each `>= 2`), computed on the GPU for a
/// value index ([`crate::index`]): the values are uploaded as an array of their own and
/// answered by `fast` with themselves as the thresholds, so that sum `k` is
/// `c(v_0) + ... + c(v_k)` and each `c` is one step. The same pipelines, tables and wide
/// path as every other query; nothing new runs on the GPU. `observer` can stop it; its
/// progress is the caller's to report.
pub fn divisor_counts(
    gpu: &GpuContext,
    values: &[u64],
    observer: &dyn Observer,
) -> Result<Vec<u32>> {
    debug_assert!(values.windows(2).all(|w| w[0] < w[1]) && values.first() >= Some(&2));
    if values.is_empty() {
        return Ok(Vec::new());
    }
    let _turn = gpu.turn();
    let array = Arc::new(Array::from_u64(values.to_vec()));
    let uploaded = GpuArray::upload(gpu, &array, UploadOptions::default())?;
    let thresholds = Integers::from(values.iter().map(|&v| i128::from(v)).collect::<Vec<_>>());
    let (sums, _) = query(
        gpu,
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
                    let wrong = format!("the running sum went from {before} to {sum}");
                    Error::gpu(
                        format!("counting the divisors of {v}"),
                        GpuError::Wrong(wrong),
                    )
                })?;
            before = sum;
            Ok(c)
        })
        .collect()
}

/// One part's share of a query: its threshold keys (naive: one per given threshold; fast: one
/// per distinct threshold, ascending), and the array's divisor table for `fast`.
#[derive(Clone, Copy)]
struct PartQuery<'a> {
    part: &'a Part,
    keys: &'a [Option<u64>],
    plan: &'a Plan<'a>,
    algorithm: Algorithm,
    table: Option<&'a DivisorTableBuffer>,
}

/// One u64 sum per threshold key over one part: naive, the sum for that threshold; fast,
/// the bucket sum for that distinct threshold. `None` keys (no element can qualify) are never
/// dispatched and sum to 0; for fast they are always a prefix of the ascending distinct
/// thresholds. The part's chunks in order ([`query_chunk`]), then the readback.
fn run_query(
    gpu: &GpuContext,
    of: PartQuery<'_>,
    observer: &dyn Observer,
) -> Result<(Vec<u64>, QueryTimings)> {
    let part = of.part;
    let skipped = of.keys.iter().take_while(|k| k.is_none()).count();
    let live = &of.keys[skipped..];
    let passes = passes(of.keys, of.algorithm);
    if part.len == 0 || passes.is_empty() {
        return Ok((vec![0; of.keys.len()], QueryTimings::default()));
    }
    let table_top = of.table.map_or(0, |t| t.top);
    let table_buffer = of.table.map_or(&gpu.pipelines.no_table, |t| &t.buffer);
    let hist_top = match of.algorithm {
        Algorithm::Fast => histogram_top(gpu, live.len(), table_top, part.len),
        Algorithm::Naive => 0,
    };
    gpu.check("running the query", || {
        let buffers = query_buffers(gpu, live, hist_top);
        let dispatch = Dispatch::new(gpu, of, &buffers.params, live.len(), table_top, hist_top);
        let start = Instant::now();
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        encoder.clear_buffer(&buffers.sums, 0, None);
        gpu.queue.submit([encoder.finish()]);
        let mut bound = bind_part(gpu, part, &buffers, table_buffer)?;
        // the wide blocks of the streamed chunk being counted
        let mut streamed_wide = std::mem::take(&mut bound.first_wide);
        let mut progress = Progress::new(gpu, &dispatch);
        for chunk in 0..part.chunk_count() {
            let chunk_of = ChunkOf {
                chunk,
                bound: &bound.groups,
                lease: bound.lease.as_ref(),
                wide: &streamed_wide,
            };
            let next_wide =
                query_chunk(gpu, &dispatch, &mut progress, chunk_of, &passes, observer)?;
            if part.is_streamed() {
                streamed_wide = next_wide;
            }
        }
        let mut timings = progress.finish(gpu, start)?;
        let start = Instant::now();
        let words: Vec<u32> = gpu.read_back(&buffers.sums, buffers.sums_size)?;
        timings.readback = start.elapsed();
        let sums = sums_of(&words, skipped, live.len(), hist_top, of.plan);
        Ok((sums, timings))
    })
}

/// The buffers of one query over one part: the live thresholds' words, the sums (fast: the
/// bucket sums, then with a histogram one slot per value 0..=`hist_top`), the parameters.
fn query_buffers(gpu: &GpuContext, live: &[Option<u64>], hist_top: u32) -> QueryBuffers {
    let threshold_words: Vec<[u32; 2]> = live.iter().map(|k| split(k.unwrap_or(0))).collect();
    let thresholds = gpu.init_buffer(
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
    let usage =
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
    let sums = zeroed(&gpu.device, "divgpu sums", sums_size, usage);
    let params = gpu.init_buffer(
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
    gpu: &GpuContext,
    part: &'p Part,
    buffers: &QueryBuffers,
    table: &wgpu::Buffer,
) -> Result<PartBindings<'p>> {
    let bind = |keys: &wgpu::Buffer| query_bindings(gpu, keys, buffers, table);
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
            let lease = lease(gpu, rings, *ring_len, part.key_width as usize);
            let first_wide = write_keys(gpu, &lease.ring()[0], source, part.chunk_range(0))?;
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
    gpu: &GpuContext,
    keys: &wgpu::Buffer,
    buffers: &QueryBuffers,
    table: &wgpu::Buffer,
) -> wgpu::BindGroup {
    gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("divgpu bindings"),
        layout: &gpu.pipelines.layout,
        entries: &[
            entry(0, keys.as_entire_binding()),
            entry(1, buffers.thresholds.as_entire_binding()),
            entry(2, buffers.sums.as_entire_binding()),
            entry(3, buffers.params.as_entire_binding()),
            entry(4, gpu.pipelines.odd_primes.as_entire_binding()),
            entry(6, table.as_entire_binding()),
        ],
    })
}

/// Every pass over one chunk: its elements in slices paced by [`next_slice`], then its
/// wide blocks ([`count_wide`]). On a streamed part the next chunk's keys are converted and
/// queued while the GPU works on this chunk's last slice; returns that chunk's wide blocks.
fn query_chunk(
    gpu: &GpuContext,
    dispatch: &Dispatch<'_>,
    progress: &mut Progress,
    of: ChunkOf<'_>,
    passes: &[Option<u32>],
    observer: &dyn Observer,
) -> Result<Vec<u32>> {
    let part = dispatch.part;
    let len = part.chunk_range(of.chunk).len() as u64;
    let chunk = match &part.storage {
        Storage::Resident(chunks) => BoundChunk {
            group: &of.bound[of.chunk],
            wide: &chunks[of.chunk].1,
            len,
        },
        Storage::Streamed { .. } => BoundChunk {
            group: &of.bound[of.chunk % 2],
            wide: of.wide,
            len,
        },
    };
    let mut next_wide = Vec::new();
    for (p, &pass) in passes.iter().enumerate() {
        let mut base = 0u64;
        while base < len {
            if observer.cancelled() {
                return Err(Error::Cancelled);
            }
            let n = progress.slice.min(len - base);
            let submitted = dispatch_slice(gpu, dispatch, progress, chunk.group, pass, base, n);
            if p + 1 == passes.len() && base + n == len {
                // the queue orders the write after the work that reads the buffer
                next_wide = queue_next_chunk(gpu, part, &of)?;
            }
            gpu.wait()?;
            progress.slice_done(gpu, dispatch, n, submitted)?;
            observer.advance(n);
            base += n;
        }
        count_wide(gpu, dispatch, progress, &chunk, pass, observer)?;
    }
    Ok(next_wide)
}

/// On a streamed part, queues the keys of the chunk after `of` into the ring's other buffer;
/// returns that chunk's wide blocks (none on a resident part or after the last chunk).
fn queue_next_chunk(gpu: &GpuContext, part: &Part, of: &ChunkOf<'_>) -> Result<Vec<u32>> {
    match (&part.storage, of.lease) {
        (Storage::Streamed { source, .. }, Some(lease)) if of.chunk + 1 < part.chunk_count() => {
            let next = of.chunk + 1;
            write_keys(gpu, &lease.ring()[next % 2], source, part.chunk_range(next))
        }
        _ => Ok(Vec::new()),
    }
}

/// One pass (naive: its threshold) over the wide blocks of a chunk, by the wide pipeline
/// ([`WideState::run`]).
fn count_wide(
    gpu: &GpuContext,
    dispatch: &Dispatch<'_>,
    progress: &mut Progress,
    chunk: &BoundChunk<'_>,
    pass: Option<u32>,
    observer: &dyn Observer,
) -> Result<()> {
    let len = chunk.len;
    for &block in chunk.wide {
        let state = progress.wide.get_or_insert_with(|| WideState::new(gpu));
        let start = block as u64 * WIDE_BLOCK as u64;
        let template = Params {
            threshold: pass.unwrap_or(0),
            naive: u32::from(pass.is_some()),
            hist_top: 0,
            ..dispatch.template(start, (start + WIDE_BLOCK as u64).min(len))
        };
        let (params, timer) = (dispatch.params, &mut progress.timer);
        state.run(gpu, chunk.group, params, template, timer, observer)?;
    }
    Ok(())
}

/// Submits one slice, `n` elements from `base` of the chunk bound in `bind_group`, of one
/// pass (naive: its threshold); returns when it was submitted.
fn dispatch_slice(
    gpu: &GpuContext,
    dispatch: &Dispatch<'_>,
    progress: &mut Progress,
    bind_group: &wgpu::BindGroup,
    pass: Option<u32>,
    base: u64,
    n: u64,
) -> Instant {
    let params = Params {
        // naive: the threshold; fast: the divisor table's top
        threshold: pass.unwrap_or(dispatch.table_top),
        naive: 0,
        hist_top: dispatch.hist_top,
        ..dispatch.template(base, base + n)
    };
    gpu.queue
        .write_buffer(dispatch.params, 0, bytemuck::bytes_of(&params));
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    let groups = n.div_ceil(dispatch.wg);
    let timer = progress.timer.as_mut();
    record_pass(
        gpu,
        &mut encoder,
        "divgpu query",
        dispatch.pipeline,
        &[bind_group],
        groups,
        timer,
    );
    let submitted = Instant::now();
    gpu.queue.submit([encoder.finish()]);
    submitted
}

/// `fast`'s histogram for a query with `buckets` live distinct thresholds over a part of
/// `elements` elements: the elements of value 2 ..= the returned top add c(x), looked up in
/// the divisor table, to a slot of their value rather than search the thresholds for their
/// bucket; the host then adds each value's slot to its bucket. Only with more buckets than
/// the workgroup sums hold (fewer are searched in workgroup memory) and a table; the top is
/// at most the table's, one slot per element (the slots are read back), and the sums'
/// binding. 0: no histogram.
fn histogram_top(gpu: &GpuContext, buckets: usize, table_top: u32, elements: usize) -> u32 {
    if buckets <= LOCAL_BUCKETS {
        return 0;
    }
    let binding_slots = gpu.limits.max_storage_buffer_binding_size / 8;
    let top = u64::from(table_top)
        .min(elements as u64)
        .min(binding_slots.saturating_sub(buckets as u64 + 1));
    if top < 2 {
        0
    } else {
        top as u32
    }
}

/// The buffers one query over one part writes ([`query_buffers`]).
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

impl<'a> Dispatch<'a> {
    fn new(
        gpu: &'a GpuContext,
        of: PartQuery<'a>,
        params: &'a wgpu::Buffer,
        live: usize,
        table_top: u32,
        hist_top: u32,
    ) -> Self {
        let (pipeline, num_thresholds) = match of.algorithm {
            Algorithm::Naive => (&gpu.pipelines.naive, 1),
            Algorithm::Fast => (&gpu.pipelines.fast, live as u32),
        };
        let wg = u64::from(gpu.pipelines.workgroup_size);
        Dispatch {
            part: of.part,
            pipeline,
            params,
            num_thresholds,
            table_top,
            hist_top,
            wg,
            max_slice: u64::from(gpu.limits.max_compute_workgroups_per_dimension).pow(2) * wg,
        }
    }

    /// The `Params` every dispatch of this query over elements `base..end` of a chunk shares;
    /// each kind of dispatch sets the rest.
    fn template(&self, base: u64, end: u64) -> Params {
        Params {
            base: base as u32,
            end: end as u32,
            signed_keys: u32::from(self.part.signed),
            num_thresholds: self.num_thresholds,
            key_width: self.part.key_width,
            ..Params::default()
        }
    }
}

/// What changes as a query goes: the slice the pacing chose, the pass timer, the wide state.
struct Progress {
    slice: u64,
    timer: Option<PassTimer>,
    wide: Option<WideState>,
}

impl Progress {
    fn new(gpu: &GpuContext, dispatch: &Dispatch<'_>) -> Self {
        Progress {
            slice: FIRST_SLICE.min(dispatch.max_slice),
            timer: PassTimer::new(gpu),
            wide: None,
        }
    }

    /// After a slice of `n` elements, submitted at `submitted`, has finished: the timer's
    /// queries read when its set is full, and the next slice sized from this one.
    fn slice_done(
        &mut self,
        gpu: &GpuContext,
        dispatch: &Dispatch<'_>,
        n: u64,
        submitted: Instant,
    ) -> Result<()> {
        if let Some(timer) = &mut self.timer {
            timer.collect_if_full(gpu)?;
        }
        let took = submitted.elapsed();
        self.slice = next_slice(self.slice, n, took, dispatch.wg, dispatch.max_slice);
        Ok(())
    }

    /// The query's compute time since `start`, and the passes' time where they were timed.
    fn finish(mut self, gpu: &GpuContext, start: Instant) -> Result<QueryTimings> {
        let mut timings = QueryTimings::default();
        if let Some(timer) = &mut self.timer {
            timer.collect(gpu)?;
            timings.gpu = Some(timer.total());
        }
        timings.compute = start.elapsed();
        Ok(timings)
    }
}

/// What a query over a part binds ([`bind_part`]).
struct PartBindings<'p> {
    /// A streamed part's ring, lent to this query.
    lease: Option<Lease<'p>>,
    /// The bind group of each chunk buffer (a streamed part's: of each buffer of the ring).
    groups: Vec<wgpu::BindGroup>,
    /// A streamed part's first chunk's wide blocks (its keys are queued).
    first_wide: Vec<u32>,
}

/// The chunk a pass is over: its bind group, its wide blocks, its elements.
struct BoundChunk<'a> {
    group: &'a wgpu::BindGroup,
    wide: &'a [u32],
    len: u64,
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

/// An observer that passes on only the caller's wish to stop: [`divisor_counts`]'s
/// progress is counted in values, the query's in element passes.
struct CancelOnly<'a>(&'a dyn Observer);

impl Observer for CancelOnly<'_> {
    fn cancelled(&self) -> bool {
        self.0.cancelled()
    }
}
