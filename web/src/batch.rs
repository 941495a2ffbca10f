//! The batch line: how far the images opened together have got, and their throughput.
//!
//! A batch is every analysis requested since the page was last idle (nothing queued or
//! running), so a pause between two batches does not count against either. Pure arithmetic,
//! tested natively; the page supplies the times (`performance.now()`, milliseconds).

/// One image's analysis, as the batch line sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// When the page asked for the analysis.
    pub sent_ms: f64,
    /// When it ended (done, cancelled or failed), if it has.
    pub ended_ms: Option<f64>,
    /// Cells classified so far.
    pub cells: usize,
}

/// Where a batch stands.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchSummary {
    /// Images whose analysis ended.
    pub ended: usize,
    /// Images in the batch.
    pub images: usize,
    /// Cells classified.
    pub cells: usize,
    /// From the first request to the last end (or to now, while some run).
    pub seconds: f64,
}

impl BatchSummary {
    /// Cells per second over the whole batch (decoding, detection and queueing included).
    pub fn cells_per_second(&self) -> f64 {
        self.cells as f64 / self.seconds.max(1e-3)
    }

    /// One line for the page.
    pub fn line(&self) -> String {
        if self.ended == self.images {
            format!(
                "Batch done: {} images, {} cells in {:.1} s ({:.1} cells/s overall)",
                self.images,
                self.cells,
                self.seconds,
                self.cells_per_second()
            )
        } else {
            format!(
                "Batch: {} of {} images analysed, {} cells, {:.1} cells/s overall",
                self.ended,
                self.images,
                self.cells,
                self.cells_per_second()
            )
        }
    }
}

/// Summarise the runs of one batch; `None` for fewer than two images (a single image has its
/// own progress line).
pub fn summarise(runs: &[Run], now_ms: f64) -> Option<BatchSummary> {
    if runs.len() < 2 {
        return None;
    }
    let start = runs.iter().map(|r| r.sent_ms).fold(f64::INFINITY, f64::min);
    let ended = runs.iter().filter(|r| r.ended_ms.is_some()).count();
    let end = if ended == runs.len() {
        runs.iter()
            .filter_map(|r| r.ended_ms)
            .fold(f64::NEG_INFINITY, f64::max)
    } else {
        now_ms
    };
    Some(BatchSummary {
        ended,
        images: runs.len(),
        cells: runs.iter().map(|r| r.cells).sum(),
        seconds: ((end - start) / 1000.0).max(0.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(sent_ms: f64, ended_ms: Option<f64>, cells: usize) -> Run {
        Run {
            sent_ms,
            ended_ms,
            cells,
        }
    }

    #[test]
    fn a_single_image_has_no_batch_line() {
        assert_eq!(summarise(&[], 0.0), None);
        assert_eq!(summarise(&[run(0.0, Some(900.0), 3)], 1000.0), None);
    }

    #[test]
    fn a_running_batch_counts_to_now_and_a_finished_one_to_its_last_end() {
        let mut runs = vec![run(1000.0, Some(3000.0), 2), run(1010.0, None, 1)];
        let s = summarise(&runs, 5000.0).expect("two images");
        assert_eq!((s.ended, s.images, s.cells), (1, 2, 3));
        assert!((s.seconds - 4.0).abs() < 1e-9);
        assert_eq!(
            s.line(),
            "Batch: 1 of 2 images analysed, 3 cells, 0.8 cells/s overall"
        );
        runs[1].ended_ms = Some(7000.0);
        runs[1].cells = 2;
        // Later clock readings change nothing once every image has ended.
        let s = summarise(&runs, 60_000.0).expect("two images");
        assert!((s.seconds - 6.0).abs() < 1e-9);
        assert_eq!(
            s.line(),
            "Batch done: 2 images, 4 cells in 6.0 s (0.7 cells/s overall)"
        );
    }
}
