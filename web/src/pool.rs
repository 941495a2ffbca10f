//! Spreading the work of several images over several compute workers.
//!
//! burn's CPU backend runs on one thread in WebAssembly (rayon has no threads there), so on the
//! CPU the page starts one worker per logical core, each with its own copy of the model. The
//! page keeps the work queue: each worker is given one job at a time, when it is idle, so no
//! worker sits idle while another has work queued. A job is an image's analysis (detection and
//! the first part of its cells) or a part of a smear's cells that its analysis shared: a smear's
//! cells are cut into parts of a few cells, and whichever worker is idle takes the next part,
//! before any new image (an image started is finished first). On WebGPU everything goes to the
//! first worker: the GPU is one device, and a second model on it would only compete for it.
//! Pure bookkeeping, tested natively; the workers themselves are in `bridge`.

use crate::protocol::Response;
use std::collections::{HashMap, HashSet, VecDeque};

/// Most workers started from the browser's core count: each adds 100-150 MB of memory
/// (measured by `tests/bench.mjs`), and the logical cores a browser reports are often
/// hyper-threads, which add little to a second worker on the same core. `?workers=N` asks
/// for more.
pub const MAX_DEFAULT_WORKERS: usize = 4;

/// Largest `?workers=N` the page accepts.
pub const MAX_WORKERS: usize = 16;

/// How many CPU workers to start, and a note for the user when the page's query asked for
/// something unusable.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerCount {
    /// Workers to start (at least 1).
    pub count: usize,
    /// Why the query's `workers` value was not used, if it was not.
    pub note: Option<String>,
}

/// The CPU worker count: `workers=N` in the page's query string (`search`, with or without the
/// leading `?`) when it is a whole number from 1 to [`MAX_WORKERS`]; otherwise the browser's
/// logical cores (`navigator.hardwareConcurrency`, which may be missing or 0), from 1 to
/// [`MAX_DEFAULT_WORKERS`].
pub fn worker_count(search: &str, hardware_concurrency: f64) -> WorkerCount {
    let cores = if hardware_concurrency.is_finite() && hardware_concurrency >= 1.0 {
        (hardware_concurrency as usize).min(MAX_DEFAULT_WORKERS)
    } else {
        1
    };
    let asked = search
        .trim_start_matches('?')
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "workers")
        .map(|(_, v)| v);
    match asked {
        None => WorkerCount {
            count: cores,
            note: None,
        },
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_WORKERS).contains(&n) => WorkerCount {
                count: n,
                note: None,
            },
            _ => WorkerCount {
                count: cores,
                note: Some(format!(
                    "workers={v} in the address is not a number from 1 to {MAX_WORKERS}; \
                     using {cores} (this browser's cores)"
                )),
            },
        },
    }
}

/// Workers the pool starts in place of ones that stopped (a panic, a lost GPU) before it gives
/// up: a fault that recurs on every start is not worked around by starting more.
pub const MAX_RESTARTS: usize = 8;

/// Cells per part of a shared smear: one batch of the worker's classifier, so a part is over in
/// about a second on the CPU and an idle worker never waits long for the next.
pub const CELLS_PER_PART: usize = 4;

/// A job for one worker.
#[derive(Debug, Clone, PartialEq)]
pub enum Job<P> {
    /// Detect and classify image `id` (its request, `payload`, is the caller's).
    Analyze {
        /// Image id.
        id: u32,
        /// What the caller sends the worker.
        payload: P,
    },
    /// Classify part `part` of `parts` of image `id`'s shared cells ([`crate::share`]).
    Part {
        /// Image id.
        id: u32,
        /// This part.
        part: usize,
        /// Parts in all.
        parts: usize,
    },
}

/// What a cancel of an image found: the workers running a job of it (to be told), and how many
/// of its analyses and parts were still queued (now dropped, never run).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Cancelled {
    /// Workers running a job of the image.
    pub running: Vec<usize>,
    /// Queued analyses dropped.
    pub analyses: usize,
    /// Queued parts dropped.
    pub parts: usize,
}

/// The page's work queue and which worker runs what. `P` is the payload of an analysis (the
/// request and its bytes in the page; `()` in tests).
#[derive(Debug, Clone)]
pub struct Dispatch<P> {
    /// Per worker, the image whose job it runs (one job at most).
    running: Vec<Option<u32>>,
    /// Analyses waiting for a worker, in the order asked.
    analyses: VecDeque<(u32, P)>,
    /// Parts of shared smears waiting for a worker, oldest first.
    parts: VecDeque<(u32, usize, usize)>,
    /// Images cancelled while a job of them runs: their cells are not shared.
    cancelled: HashSet<u32>,
    /// The first worker computes on WebGPU: every job goes to it.
    gpu: bool,
}

impl<P> Default for Dispatch<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P> Dispatch<P> {
    /// One worker (index 0, the one that also decodes, probes the backend and self-tests).
    pub fn new() -> Self {
        Self {
            running: vec![None],
            analyses: VecDeque::new(),
            parts: VecDeque::new(),
            cancelled: HashSet::new(),
            gpu: false,
        }
    }

    /// Workers known.
    pub fn workers(&self) -> usize {
        self.running.len()
    }

    /// Register one more worker; returns its index.
    pub fn add_worker(&mut self) -> usize {
        self.running.push(None);
        self.running.len() - 1
    }

    /// Whether worker 0 computes on WebGPU (then it takes every job).
    pub fn set_gpu(&mut self, gpu: bool) {
        self.gpu = gpu;
    }

    /// Queue an analysis of image `id`.
    pub fn analyze(&mut self, id: u32, payload: P) {
        self.analyses.push_back((id, payload));
    }

    /// Hand out work: to each idle worker in index order (on WebGPU worker 0 only) the oldest
    /// waiting part of a shared smear, else the oldest waiting analysis. The jobs to send.
    pub fn pump(&mut self) -> Vec<(usize, Job<P>)> {
        let usable = if self.gpu { 1 } else { self.running.len() };
        let mut out = Vec::new();
        for w in 0..usable {
            if self.running[w].is_some() {
                continue;
            }
            let job = if let Some((id, part, parts)) = self.parts.pop_front() {
                Job::Part { id, part, parts }
            } else if let Some((id, payload)) = self.analyses.pop_front() {
                Job::Analyze { id, payload }
            } else {
                break;
            };
            self.running[w] = Some(match &job {
                Job::Analyze { id, .. } | Job::Part { id, .. } => *id,
            });
            out.push((w, job));
        }
        out
    }

    /// The analysis of image `id` found `cells` cells and offers to share them: into how many
    /// parts to cut them. Its worker classifies part 0 at once; the others wait here for idle
    /// workers ([`Dispatch::pump`]), the analysis's own worker too once it is done. One part per
    /// worker when every other worker is idle (an even split, no more messages than needed);
    /// while some are busy, enough parts for the idle ones and of at most [`CELLS_PER_PART`]
    /// cells, so the busy ones join in as they end. 1 (nothing shared) on WebGPU, for a single
    /// cell, and for an image cancelled meanwhile (the cancel may have crossed the offer).
    pub fn share(&mut self, id: u32, cells: usize) -> usize {
        if self.gpu || self.cancelled.contains(&id) || cells < 2 {
            return 1;
        }
        let idle = self.running.iter().filter(|r| r.is_none()).count();
        let even = (idle + 1).min(cells);
        let parts = if idle + 1 >= self.running.len() {
            even
        } else {
            cells.div_ceil(CELLS_PER_PART).max(even)
        };
        self.parts.extend((1..parts).map(|k| (id, k, parts)));
        parts
    }

    /// Worker `worker` says its job on image `id` ended (done, cancelled or failed). An end
    /// that matches nothing running there is ignored.
    pub fn finish(&mut self, worker: usize, id: u32) {
        if let Some(r) = self.running.get_mut(worker).filter(|r| **r == Some(id)) {
            *r = None;
            if !self.running.contains(&Some(id)) {
                self.cancelled.remove(&id);
            }
        }
    }

    /// The page cancels image `id`: its queued analyses and parts are dropped, and the workers
    /// running a job of it are to be told.
    pub fn cancel(&mut self, id: u32) -> Cancelled {
        let before = (self.analyses.len(), self.parts.len());
        self.analyses.retain(|(i, _)| *i != id);
        self.parts.retain(|(i, _, _)| *i != id);
        let running = self.holders(id);
        if !running.is_empty() {
            self.cancelled.insert(id);
        }
        Cancelled {
            running,
            analyses: before.0 - self.analyses.len(),
            parts: before.1 - self.parts.len(),
        }
    }

    /// The image whose job worker `worker` held when it stopped ([`crate::protocol::Response::Crashed`]);
    /// the caller ends that job ([`Dispatch::finish`]) as the worker would have.
    pub fn crashed(&self, worker: usize) -> Option<u32> {
        self.running.get(worker).copied().flatten()
    }

    /// The workers running a job of image `id`.
    pub fn holders(&self, id: u32) -> Vec<usize> {
        (0..self.running.len())
            .filter(|&w| self.running[w] == Some(id))
            .collect()
    }

    /// Whether parts of image `id` still wait for a worker.
    pub fn waiting_parts(&self, id: u32) -> bool {
        self.parts.iter().any(|(i, _, _)| *i == id)
    }
}

/// The reports of the parts of shared smears, merged into the one report per image that the
/// page expects: a `Progress` summing the parts' and one `Done` when every part has ended.
#[derive(Debug, Clone, Default)]
pub struct Parts {
    images: HashMap<u32, Merge>,
}

/// One shared smear.
#[derive(Debug, Clone)]
struct Merge {
    /// The worker whose analysis found the cells (it classifies part 0).
    owner: usize,
    /// Per part: cells done, and cells per second while it runs.
    done: Vec<usize>,
    cells_per_second: Vec<f64>,
    /// The part each worker runs now.
    running: HashMap<usize, usize>,
    /// Parts ended (done, cancelled, failed or dropped).
    ended: usize,
    /// Cells in all.
    total: usize,
    cancelled: bool,
    /// Part 0's `first_ms`: counted from the start of the whole analysis on the owner.
    first_ms: Option<f64>,
    total_ms: f64,
}

impl Parts {
    /// Image `id`'s `total` cells are classified in `parts` parts; part 0 by `owner`, the
    /// worker whose analysis found them.
    pub fn start(&mut self, id: u32, owner: usize, total: usize, parts: usize) {
        self.images.insert(
            id,
            Merge {
                owner,
                done: vec![0; parts],
                cells_per_second: vec![0.0; parts],
                running: HashMap::from([(owner, 0)]),
                ended: 0,
                total,
                cancelled: false,
                first_ms: None,
                total_ms: 0.0,
            },
        );
    }

    /// Worker `worker` was given part `part` of image `id`.
    pub fn began(&mut self, id: u32, worker: usize, part: usize) {
        if let Some(m) = self.images.get_mut(&id) {
            m.running.insert(worker, part);
        }
    }

    /// `n` parts of image `id` were dropped by a cancel before any worker took them: the
    /// merged `Done` when that leaves no part to wait for.
    pub fn dropped(&mut self, id: u32, n: usize) -> Option<Response> {
        let m = self.images.get_mut(&id)?;
        m.ended += n;
        m.cancelled |= n > 0;
        self.done_if_over(id)
    }

    fn done_if_over(&mut self, id: u32) -> Option<Response> {
        let m = self.images.get(&id)?;
        if m.ended < m.done.len() {
            return None;
        }
        let done = Response::Done {
            id,
            cancelled: m.cancelled,
            first_ms: m.first_ms,
            total_ms: m.total_ms,
        };
        self.images.remove(&id);
        Some(done)
    }

    /// Pass worker `worker`'s response on as the page should see it: a shared smear's
    /// `Progress` as the sum of its parts' (cells done; cells per second of the parts running),
    /// its `Done` held (`None`) until the last part ends and then merged (cancelled if any part
    /// was; `first_ms` from part 0; `total_ms` the longest part's own); a report of a worker
    /// that runs no part of it dropped; everything else as it is.
    pub fn merge(&mut self, worker: usize, r: Response) -> Option<Response> {
        let id = match &r {
            Response::Progress { id, .. } | Response::Done { id, .. } => *id,
            _ => return Some(r),
        };
        let Some(m) = self.images.get_mut(&id) else {
            return Some(r);
        };
        let part = *m.running.get(&worker)?;
        match r {
            Response::Progress {
                done,
                cells_per_second,
                ..
            } => {
                m.done[part] = done;
                m.cells_per_second[part] = cells_per_second;
                let rate = m.running.values().map(|&p| m.cells_per_second[p]).sum();
                Some(Response::Progress {
                    id,
                    done: m.done.iter().sum(),
                    total: m.total,
                    cells_per_second: rate,
                })
            }
            Response::Done {
                cancelled,
                first_ms,
                total_ms,
                ..
            } => {
                m.running.remove(&worker);
                m.ended += 1;
                m.cancelled |= cancelled;
                if part == 0 && worker == m.owner {
                    m.first_ms = first_ms;
                }
                m.total_ms = m.total_ms.max(total_ms);
                self.done_if_over(id)
            }
            r => Some(r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_count_follows_the_cores_capped_or_the_query() {
        assert_eq!(worker_count("", 4.0).count, 4);
        assert_eq!(worker_count("", 32.0).count, MAX_DEFAULT_WORKERS);
        assert_eq!(worker_count("", 0.0).count, 1);
        assert_eq!(worker_count("", f64::NAN).count, 1);
        let w = worker_count("?workers=3", 2.0);
        assert_eq!((w.count, w.note), (3, None));
        assert_eq!(worker_count("?a=1&workers=16", 2.0).count, 16);
    }

    #[test]
    fn an_unusable_query_falls_back_to_the_cores_and_says_why() {
        for q in [
            "?workers=0",
            "?workers=17",
            "?workers=two",
            "?workers=-1",
            "?workers=",
        ] {
            let w = worker_count(q, 2.0);
            assert_eq!(w.count, 2, "{q}");
            let note = w.note.unwrap_or_default();
            assert!(
                note.contains("from 1 to 16") && note.contains("using 2"),
                "{q}: {note}"
            );
        }
    }

    /// Jobs running on each worker (0 or 1).
    fn load(d: &Dispatch<()>) -> Vec<usize> {
        d.running.iter().map(|r| usize::from(r.is_some())).collect()
    }

    fn analysis(id: u32) -> Job<()> {
        Job::Analyze { id, payload: () }
    }

    fn part(id: u32, part: usize, parts: usize) -> Job<()> {
        Job::Part { id, part, parts }
    }

    #[test]
    fn each_idle_worker_takes_the_next_job_one_at_a_time() {
        let mut d = Dispatch::new();
        d.add_worker();
        d.add_worker();
        assert_eq!(d.workers(), 3);
        assert!(d.pump().is_empty(), "nothing to do");
        for id in 10..15 {
            d.analyze(id, ());
        }
        assert_eq!(
            d.pump(),
            [(0, analysis(10)), (1, analysis(11)), (2, analysis(12))]
        );
        assert!(d.pump().is_empty(), "everyone busy: the rest wait here");
        assert_eq!(load(&d), [1, 1, 1]);
        // Worker 1 ends first: it takes the next, not the first worker's queue.
        d.finish(1, 11);
        assert_eq!(d.pump(), [(1, analysis(13))]);
        d.finish(1, 99); // a stray end: ignored
        d.finish(0, 11); // not its image: ignored
        assert_eq!(load(&d), [1, 1, 1]);
        assert_eq!(d.holders(13), [1]);
        assert!(d.holders(11).is_empty());
    }

    #[test]
    fn a_shared_smear_s_parts_go_first_to_any_idle_worker_the_owner_too() {
        let mut d = Dispatch::new();
        for _ in 0..2 {
            d.add_worker();
        }
        d.analyze(1, ());
        d.analyze(2, ());
        assert_eq!(d.pump(), [(0, analysis(1)), (1, analysis(2))]);
        d.analyze(3, ());
        // Worker 0 found 10 cells in image 1; worker 2 is idle: three parts of at most 4
        // cells, worker 0 keeps part 0, the idle worker takes part 1 before image 3.
        assert_eq!(d.share(1, 10), 3);
        assert_eq!(d.pump(), [(2, part(1, 1, 3))]);
        assert!(d.waiting_parts(1));
        assert_eq!(d.holders(1), [0, 2]);
        // Worker 1 ends image 2 (a small one): it takes image 1's last part, then image 3.
        d.finish(1, 2);
        assert_eq!(d.pump(), [(1, part(1, 2, 3))]);
        assert!(!d.waiting_parts(1));
        d.finish(0, 1);
        assert_eq!(d.pump(), [(0, analysis(3))]);
        // Few cells: as many parts as workers to share them, one cell each at least.
        d.finish(2, 1);
        assert_eq!(d.share(3, 2), 2, "two cells, one idle worker");
        assert_eq!(d.share(3, 1), 1, "one cell is not shared");
        // Nobody idle: one part per 4 cells, waiting for whoever ends first.
        assert_eq!(d.pump(), [(2, part(3, 1, 2))]);
        assert_eq!(d.share(3, 9), 3);
        d.set_gpu(true);
        assert_eq!(d.share(3, 8), 1, "never on WebGPU");
    }

    #[test]
    fn with_every_other_worker_idle_a_smear_is_split_evenly() {
        let mut d = Dispatch::new();
        for _ in 0..2 {
            d.add_worker();
        }
        d.analyze(1, ());
        assert_eq!(d.pump(), [(0, analysis(1))]);
        assert_eq!(d.share(1, 13), 3, "one part each, not parts of 4 cells");
        assert_eq!(d.pump(), [(1, part(1, 1, 3)), (2, part(1, 2, 3))]);
        assert!(!d.waiting_parts(1));
    }

    #[test]
    fn on_webgpu_every_job_goes_to_the_first_worker() {
        let mut d = Dispatch::new();
        d.add_worker();
        d.set_gpu(true);
        d.analyze(1, ());
        d.analyze(2, ());
        assert_eq!(d.pump(), [(0, analysis(1))]);
        assert!(d.pump().is_empty(), "worker 1 is not used");
        d.finish(0, 1);
        assert_eq!(d.pump(), [(0, analysis(2))]);
        d.set_gpu(false);
        d.analyze(3, ());
        assert_eq!(d.pump(), [(1, analysis(3))]);
    }

    #[test]
    fn a_cancel_drops_what_waits_and_names_the_workers_running_it() {
        let mut d = Dispatch::new();
        d.add_worker();
        d.analyze(1, ());
        d.analyze(2, ());
        d.analyze(1, ());
        assert_eq!(d.pump(), [(0, analysis(1)), (1, analysis(2))]);
        assert_eq!(d.share(1, 12), 3);
        let c = d.cancel(1);
        assert_eq!(
            c,
            Cancelled {
                running: vec![0],
                analyses: 1,
                parts: 2
            }
        );
        assert!(!d.waiting_parts(1));
        assert_eq!(
            d.share(1, 12),
            1,
            "a cancel that crossed the offer: nothing shared"
        );
        d.finish(0, 1);
        assert!(d.pump().is_empty(), "nothing of image 1 is left to run");
        assert_eq!(d.cancel(1), Cancelled::default(), "nothing left to cancel");
        // A new analysis of it shares again.
        d.analyze(1, ());
        assert_eq!(d.pump(), [(0, analysis(1))]);
        assert_eq!(d.share(1, 5), 2);
    }

    /// The bridge's handling of a worker that stopped, in its order: the job it held
    /// ([`Dispatch::crashed`]) ends with a `Done` as if the worker had sent it, so a shared
    /// smear still ends once, and the new worker in its place takes the next job.
    #[test]
    fn a_stopped_worker_s_part_ends_as_it_would_have_and_the_queue_goes_on() {
        let mut d = Dispatch::new();
        d.add_worker();
        let mut parts = Parts::default();
        d.analyze(1, ());
        d.analyze(2, ());
        assert_eq!(d.pump(), [(0, analysis(1)), (1, analysis(2))]);
        // Image 1's 8 cells, shared while worker 1 is busy: parts of at most 4 cells.
        let n = d.share(1, 8);
        assert_eq!(n, 2);
        parts.start(1, 0, 8, n);
        d.finish(1, 2);
        assert_eq!(d.pump(), [(1, part(1, 1, 2))]);
        parts.began(1, 1, 1);
        // Worker 1 stops while it runs part 1.
        assert_eq!(d.crashed(1), Some(1));
        assert_eq!(d.crashed(0), Some(1), "the owner still runs part 0");
        assert_eq!(
            parts.merge(1, done(1, false, None, 0.0)),
            None,
            "the smear waits for part 0"
        );
        d.finish(1, 1);
        assert_eq!(d.crashed(1), None, "nothing held any more");
        d.analyze(3, ());
        assert_eq!(
            d.pump(),
            [(1, analysis(3))],
            "the new worker takes the next job"
        );
        let end = parts.merge(0, done(1, false, Some(5.0), 10.0));
        assert!(
            matches!(
                end,
                Some(Response::Done {
                    id: 1,
                    cancelled: false,
                    ..
                })
            ),
            "{end:?}"
        );
        assert_eq!(
            parts.merge(0, done(1, false, None, 1.0)),
            Some(done(1, false, None, 1.0)),
            "ended once: a later report is passed on as it is"
        );
    }

    fn progress(id: u32, done: usize, total: usize, rate: f64) -> Response {
        Response::Progress {
            id,
            done,
            total,
            cells_per_second: rate,
        }
    }

    fn done(id: u32, cancelled: bool, first_ms: Option<f64>, total_ms: f64) -> Response {
        Response::Done {
            id,
            cancelled,
            first_ms,
            total_ms,
        }
    }

    #[test]
    fn the_parts_of_a_shared_smear_report_as_one() {
        let mut p = Parts::default();
        // Owner 0 runs part 0 of 3; worker 2 part 1.
        p.start(7, 0, 9, 3);
        p.began(7, 2, 1);
        assert_eq!(
            p.merge(0, progress(7, 2, 4, 1.5)),
            Some(progress(7, 2, 9, 1.5))
        );
        assert_eq!(
            p.merge(2, progress(7, 1, 4, 2.0)),
            Some(progress(7, 3, 9, 3.5)),
            "done cells and the running parts' rates add up; the total is the image's"
        );
        assert_eq!(
            p.merge(1, progress(7, 1, 1, 9.0)),
            None,
            "worker 1 runs no part"
        );
        assert_eq!(p.merge(2, done(7, false, Some(40.0), 900.0)), None);
        // Worker 2 takes the last part: worker 2's earlier part counts as done.
        p.began(7, 2, 2);
        assert_eq!(
            p.merge(2, progress(7, 1, 1, 1.0)),
            Some(progress(7, 4, 9, 2.5))
        );
        assert_eq!(p.merge(0, done(7, true, Some(700.0), 1200.0)), None);
        assert_eq!(
            p.merge(2, done(7, false, None, 300.0)),
            Some(done(7, true, Some(700.0), 1200.0)),
            "one Done, when the last part ends; first_ms is the owner's"
        );
        // Over: later reports of the image, and those of unshared images, pass unchanged.
        assert_eq!(
            p.merge(0, done(7, false, None, 1.0)),
            Some(done(7, false, None, 1.0))
        );
        assert_eq!(
            p.merge(1, progress(8, 1, 1, 2.0)),
            Some(progress(8, 1, 1, 2.0))
        );
        let other = Response::Ready;
        assert_eq!(p.merge(0, other.clone()), Some(other));
    }

    #[test]
    fn parts_dropped_by_a_cancel_end_the_smear_once_the_running_ones_end() {
        let mut p = Parts::default();
        p.start(3, 1, 12, 3);
        assert_eq!(p.dropped(3, 2), None, "part 0 still runs");
        assert_eq!(
            p.merge(1, done(3, true, None, 50.0)),
            Some(done(3, true, None, 50.0))
        );
        // Every part dropped while none runs (the owner's ended first): the Done at once.
        p.start(4, 0, 12, 3);
        assert_eq!(p.merge(0, done(4, false, Some(5.0), 60.0)), None);
        assert_eq!(p.dropped(4, 2), Some(done(4, true, Some(5.0), 60.0)));
        assert_eq!(p.dropped(4, 1), None, "over");
    }
}
