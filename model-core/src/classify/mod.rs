//! The diffusion classifier (Li et al. 2023; CytoDiffusion, Deltadahl et al. 2025).
//!
//! A cell is classified by how well each class condition denoises it. For round `r` a timestep
//! `t_r` (one per stratum of the classifier's timestep range, in a seeded order) and a noise
//! image `eps_r` are drawn once and shared by every class and every cell, so the comparison
//! between classes is paired. Each round evaluates all still-active classes of all cells in one
//! batched forward pass. After `min_rounds`, a class is dropped as soon as a one-sided paired
//! t-test says its error exceeds the best class's; before that, a screen fitted on val may drop
//! classes that trail far behind ([`ClassifierSettings::screen`]); the run stops when one class
//! is left or `max_rounds` is reached.
//!
//! The classifier is written as a state machine ([`ClassifierRun`]): it hands out the noised
//! inputs of a round and takes back the predicted noise, so the caller decides how to run the
//! denoiser (synchronously on the CPU, or with an async readback on WebGPU).
//!
//! Modules: [`settings`] (what a model card stores), [`rounds`] (the seeded shared draws and the
//! pixel weights), [`scores`] (one cell's errors and what is read from them), [`elimination`]
//! (the paired test and the screen), [`run`] (a live run, and the replay of a cached one).

pub mod elimination;
pub mod rounds;
pub mod run;
pub mod scores;
pub mod settings;
#[cfg(test)]
mod tests;

pub use elimination::{
    clearly_worse, eliminate, screen_after, screen_kept, screen_may_follow, t_critical,
};
pub use rounds::{pixel_weights, plan_rounds, Round};
pub use run::{replay, ClassifierRun, RoundInputs};
pub use scores::CellScores;
pub use settings::ClassifierSettings;
