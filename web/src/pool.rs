//! Spreading the analyses of several images over several compute workers.
//!
//! burn's CPU backend runs on one thread in WebAssembly (rayon has no threads there), so on the
//! CPU the page starts one worker per logical core, each with its own copy of the model, and
//! gives each image to the least busy one. On WebGPU everything goes to the first worker: the
//! GPU is one device, and a second model on it would only compete for it. Pure bookkeeping,
//! tested natively; the workers themselves are in `bridge`.

use std::collections::HashMap;

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
    /// from it.
    owner: HashMap<u32, (usize, usize)>,
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
    /// the fewest outstanding analyses (the lowest index on a tie).
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

    /// The worker analysing image `id`, if any.
    pub fn owner(&self, id: u32) -> Option<usize> {
        self.owner.get(&id).map(|&(w, _)| w)
    }

    /// Worker `worker` says an analysis of image `id` ended (done, cancelled or failed). An
    /// end that matches no outstanding analysis there is ignored.
    pub fn finish(&mut self, worker: usize, id: u32) {
        let Some(entry) = self.owner.get_mut(&id) else {
            return;
        };
        if entry.0 != worker {
            return;
        }
        entry.1 -= 1;
        if entry.1 == 0 {
            self.owner.remove(&id);
        }
    }

    /// Analyses outstanding on each worker.
    pub fn load(&self) -> Vec<usize> {
        let mut load = vec![0; self.workers];
        for &(w, n) in self.owner.values() {
            load[w] += n;
        }
        load
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
        assert_eq!(d.owner(13), Some(0));
        assert_eq!(d.owner(11), None);
    }

    #[test]
    fn a_second_analysis_of_an_image_queues_on_the_same_worker() {
        let mut d = Dispatch::new();
        d.add_worker();
        assert_eq!(d.assign(5), 0);
        assert_eq!(d.assign(5), 0, "behind the first, not beside it");
        d.finish(0, 5);
        assert_eq!(d.owner(5), Some(0), "one of the two is still running");
        d.finish(0, 5);
        assert_eq!(d.owner(5), None);
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
}
