//! Spreading the analyses of several images over several compute workers.
//!
//! burn's CPU backend runs on one thread in WebAssembly (rayon has no threads there), so on the
//! CPU the page starts one worker per logical core, each with its own copy of the model, and
//! gives each image to the least busy one. On WebGPU everything goes to the first worker: the
//! GPU is one device, and a second model on it would only compete for it. Pure bookkeeping,
//! tested natively; the workers themselves are in `bridge`.

use crate::protocol::Response;
use std::collections::{HashMap, HashSet};

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

/// Which worker holds which image's analysis.
#[derive(Debug, Clone)]
pub struct Dispatch {
    /// Workers known.
    workers: usize,
    /// Image id to (worker, analyses of it outstanding there); each worker's load is derived
    /// from it and from `helpers`.
    owner: HashMap<u32, (usize, usize)>,
    /// Image id to the workers classifying a part of its cells beside its owner, one entry
    /// per outstanding part.
    helpers: HashMap<u32, Vec<usize>>,
    /// Images cancelled while analyses of them are outstanding: their cells are not shared.
    cancelled: HashSet<u32>,
    /// The first worker computes on WebGPU: every new analysis goes to it.
    gpu: bool,
}

impl Default for Dispatch {
    fn default() -> Self {
        Self::new()
    }
}

impl Dispatch {
    /// One worker (index 0, the one that also decodes, probes the backend and self-tests).
    pub fn new() -> Self {
        Self {
            workers: 1,
            owner: HashMap::new(),
            helpers: HashMap::new(),
            cancelled: HashSet::new(),
            gpu: false,
        }
    }

    /// Workers known.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Register one more worker; returns its index.
    pub fn add_worker(&mut self) -> usize {
        self.workers += 1;
        self.workers - 1
    }

    /// Whether worker 0 computes on WebGPU (then it takes every new analysis).
    pub fn set_gpu(&mut self, gpu: bool) {
        self.gpu = gpu;
    }

    /// The worker for a new analysis of image `id`: the one already analysing that image (so a
    /// second analysis queues behind the first), else worker 0 on WebGPU, else the worker with
    /// the fewest outstanding analyses (the lowest index on a tie: worker 0 is started, and
    /// loads the model, first).
    pub fn assign(&mut self, id: u32) -> usize {
        let w = match self.owner.get(&id) {
            Some(&(w, _)) => w,
            None if self.gpu => 0,
            None => {
                let load = self.load();
                (0..self.workers).min_by_key(|&w| (load[w], w)).unwrap_or(0)
            }
        };
        self.owner.entry(id).or_insert((w, 0)).1 += 1;
        w
    }

    /// The workers holding image `id`: its owner first, then those classifying parts of it.
    pub fn holders(&self, id: u32) -> Vec<usize> {
        let owner = self.owner.get(&id).map(|&(w, _)| w);
        let helpers = self.helpers.get(&id).into_iter().flatten().copied();
        owner.into_iter().chain(helpers).collect()
    }

    /// Worker `owner` found `cells` cells in image `id` and offers to share them: the idle
    /// workers (nothing outstanding) that will classify a part each, at most one per cell
    /// beyond the owner's first, none on WebGPU and none for a cancelled image (the cancel
    /// may have crossed the offer). Part `k + 1` goes to the `k`-th returned.
    pub fn share(&mut self, id: u32, owner: usize, cells: usize) -> Vec<usize> {
        if self.gpu || self.cancelled.contains(&id) {
            return Vec::new();
        }
        let load = self.load();
        let idle: Vec<usize> = (0..self.workers)
            .filter(|&w| w != owner && load[w] == 0)
            .take(cells.saturating_sub(1))
            .collect();
        if !idle.is_empty() {
            self.helpers.entry(id).or_default().extend(&idle);
        }
        idle
    }

    /// Worker `worker` says an analysis of image `id`, or its part of one, ended (done,
    /// cancelled or failed). An end that matches nothing outstanding there is ignored.
    pub fn finish(&mut self, worker: usize, id: u32) {
        if let Some(helpers) = self.helpers.get_mut(&id) {
            if let Some(i) = helpers.iter().position(|&w| w == worker) {
                helpers.remove(i);
                if helpers.is_empty() {
                    self.helpers.remove(&id);
                }
                return;
            }
        }
        let Some(entry) = self.owner.get_mut(&id) else {
            return;
        };
        if entry.0 != worker {
            return;
        }
        entry.1 -= 1;
        if entry.1 == 0 {
            self.owner.remove(&id);
            self.cancelled.remove(&id);
        }
    }

    /// The page cancels image `id`: the workers to tell ([`Dispatch::holders`]).
    pub fn cancel(&mut self, id: u32) -> Vec<usize> {
        let holders = self.holders(id);
        if !holders.is_empty() {
            self.cancelled.insert(id);
        }
        holders
    }

    /// Analyses, and parts of shared ones, outstanding on each worker.
    pub fn load(&self) -> Vec<usize> {
        let mut load = vec![0; self.workers];
        for &(w, n) in self.owner.values() {
            load[w] += n;
        }
        for &w in self.helpers.values().flatten() {
            load[w] += 1;
        }
        load
    }
}

/// The reports of the parts of shared images, merged into the one report per image that the
/// page expects: a `Progress` summing the parts' and one `Done` when every part has ended.
#[derive(Debug, Clone, Default)]
pub struct Parts {
    images: HashMap<u32, Merge>,
}

/// One shared image: per part (indexed by part), its worker and latest figures.
#[derive(Debug, Clone)]
struct Merge {
    workers: Vec<usize>,
    done: Vec<usize>,
    cells_per_second: Vec<f64>,
    /// Cells in all.
    total: usize,
    /// Parts still running.
    running: usize,
    cancelled: bool,
    /// Part 0's `first_ms`: counted from the start of the whole analysis on the owner.
    first_ms: Option<f64>,
    total_ms: f64,
}

impl Parts {
    /// Image `id`'s `total` cells are classified in parts, part `k` by `workers[k]` (part 0
    /// by the image's owner).
    pub fn start(&mut self, id: u32, workers: Vec<usize>, total: usize) {
        let n = workers.len();
        self.images.insert(
            id,
            Merge {
                workers,
                done: vec![0; n],
                cells_per_second: vec![0.0; n],
                total,
                running: n,
                cancelled: false,
                first_ms: None,
                total_ms: 0.0,
            },
        );
    }

    /// Pass worker `worker`'s response on as the page should see it: a shared image's
    /// `Progress` as the sum of its parts', its `Done` held (`None`) until the last part ends
    /// and then merged (cancelled if any part was; `first_ms` from part 0; `total_ms` the
    /// longest part's own); everything else as it is.
    pub fn merge(&mut self, worker: usize, r: Response) -> Option<Response> {
        let id = match &r {
            Response::Progress { id, .. } | Response::Done { id, .. } => *id,
            _ => return Some(r),
        };
        let Some(m) = self.images.get_mut(&id) else {
            return Some(r);
        };
        let Some(part) = m.workers.iter().position(|&w| w == worker) else {
            return Some(r);
        };
        match r {
            Response::Progress {
                done,
                cells_per_second,
                ..
            } => {
                m.done[part] = done;
                m.cells_per_second[part] = cells_per_second;
                Some(Response::Progress {
                    id,
                    done: m.done.iter().sum(),
                    total: m.total,
                    cells_per_second: m.cells_per_second.iter().sum(),
                })
            }
            Response::Done {
                cancelled,
                first_ms,
                total_ms,
                ..
            } => {
                m.running = m.running.saturating_sub(1);
                m.cancelled |= cancelled;
                if part == 0 {
                    m.first_ms = first_ms;
                }
                m.total_ms = m.total_ms.max(total_ms);
                if m.running > 0 {
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

    #[test]
    fn images_go_to_the_least_busy_worker() {
        let mut d = Dispatch::new();
        d.add_worker();
        d.add_worker();
        assert_eq!(d.workers(), 3);
        assert_eq!([d.assign(10), d.assign(11), d.assign(12)], [0, 1, 2]);
        assert_eq!(d.assign(13), 0);
        d.finish(1, 11);
        assert_eq!(d.load(), [2, 0, 1]);
        assert_eq!(d.assign(14), 1);
        assert_eq!(d.holders(13), [0]);
        assert!(d.holders(11).is_empty());
    }

    #[test]
    fn a_second_analysis_of_an_image_queues_on_the_same_worker() {
        let mut d = Dispatch::new();
        d.add_worker();
        assert_eq!(d.assign(5), 0);
        assert_eq!(d.assign(5), 0, "behind the first, not beside it");
        d.finish(0, 5);
        assert_eq!(d.holders(5), [0], "one of the two is still running");
        d.finish(0, 5);
        assert!(d.holders(5).is_empty());
        assert_eq!(d.load(), [0, 0]);
    }

    #[test]
    fn on_webgpu_everything_goes_to_the_first_worker_and_stray_ends_are_ignored() {
        let mut d = Dispatch::new();
        d.add_worker();
        d.set_gpu(true);
        assert_eq!([d.assign(1), d.assign(2)], [0, 0]);
        d.finish(1, 1); // not its worker
        d.finish(0, 99); // never assigned
        assert_eq!(d.load(), [2, 0]);
        d.set_gpu(false);
        assert_eq!(d.assign(3), 1);
    }

    #[test]
    fn a_smear_is_shared_with_the_idle_workers_only() {
        let mut d = Dispatch::new();
        for _ in 0..3 {
            d.add_worker();
        }
        assert_eq!([d.assign(1), d.assign(2)], [0, 1]);
        // Worker 0 found 5 cells in image 1: workers 2 and 3 are idle, worker 1 is not.
        assert_eq!(d.share(1, 0, 5), [2, 3]);
        assert_eq!(d.holders(1), [0, 2, 3]);
        assert_eq!(d.load(), [1, 1, 1, 1]);
        // No more helpers than cells beyond the owner's first, and only idle ones.
        assert!(d.share(2, 1, 9).is_empty(), "nobody is idle");
        d.finish(2, 1);
        assert_eq!(d.holders(1), [0, 3]);
        d.finish(0, 1);
        d.finish(3, 1);
        assert!(d.holders(1).is_empty());
        assert_eq!(d.load(), [0, 1, 0, 0]);
        assert_eq!(d.share(2, 1, 2), [0], "two cells: one helper");
        d.finish(0, 2);
        d.finish(1, 2);
        // A cancel that crosses the owner's offer: nothing is shared.
        assert_eq!(d.assign(3), 0);
        assert_eq!(d.cancel(3), [0]);
        assert!(d.share(3, 0, 5).is_empty(), "cancelled");
        d.finish(0, 3);
        assert!(d.cancel(3).is_empty(), "nothing left to cancel");
        assert_eq!(d.assign(3), 0);
        assert_eq!(d.share(3, 0, 5), [1, 2, 3], "a new analysis shares again");
        d.set_gpu(true);
        assert!(d.share(4, 0, 8).is_empty(), "never on WebGPU");
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
    fn the_parts_of_a_shared_image_report_as_one() {
        let mut p = Parts::default();
        p.start(7, vec![0, 2], 5);
        assert_eq!(
            p.merge(0, progress(7, 2, 3, 1.5)),
            Some(progress(7, 2, 5, 1.5))
        );
        assert_eq!(
            p.merge(2, progress(7, 1, 2, 2.0)),
            Some(progress(7, 3, 5, 3.5)),
            "done cells and rates add up; the total is the image's"
        );
        assert_eq!(p.merge(2, done(7, false, Some(40.0), 900.0)), None);
        assert_eq!(
            p.merge(0, done(7, true, Some(700.0), 1200.0)),
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
}
