//! What the experiments (`learning`, `attacks`) share: the flags every one takes and the setup
//! every run starts from — the reference corpus split 95/5 into training and evaluation chunks,
//! the model's initial weights (`init_weights(cfg, 0)`), the evaluation windows
//! (`EvalSpec { seed: 0xE7A1, windows, batch: 32 }`) and the local training parameters.

use std::time::Instant;

use autonet_ml::corpus::{self, Chunk, Corpus, CorpusOptions, default_workspace_root};
use autonet_ml::{EvalSpec, ModelConfig, TrainParams, Weights, evaluate, init_weights};

/// Boxed-error result for the examples (no anyhow dependency in this crate).
pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// The flags every experiment takes.
pub struct Common {
    pub preset: String,
    pub rounds: usize,
    pub local_steps: usize,
    pub batch: usize,
    pub max_mib: usize,
    pub eval_windows: usize,
    pub lr: f64,
    /// libtorch intra-op threads (`None`: libtorch's default).
    pub threads: Option<i32>,
}

impl Common {
    /// The defaults (`small`, batch 16, 8 MiB of corpus, 128 evaluation windows, lr 3e-3) with
    /// the experiment's own number of rounds and local steps.
    pub fn new(rounds: usize, local_steps: usize) -> Self {
        Self {
            preset: "small".into(),
            rounds,
            local_steps,
            batch: 16,
            max_mib: 8,
            eval_windows: 128,
            lr: 3e-3,
            threads: None,
        }
    }

    /// Takes `flag` when it is one of the shared flags, reading its value with `val`; returns
    /// whether it did.
    pub fn take(&mut self, flag: &str, val: &mut dyn FnMut() -> Result<String>) -> Result<bool> {
        match flag {
            "--preset" => self.preset = val()?,
            "--rounds" => self.rounds = val()?.parse()?,
            "--local-steps" => self.local_steps = val()?.parse()?,
            "--batch" => self.batch = val()?.parse()?,
            "--max-mib" => self.max_mib = val()?.parse()?,
            "--eval-windows" => self.eval_windows = val()?.parse()?,
            "--lr" => self.lr = val()?.parse()?,
            "--threads" => self.threads = Some(val()?.parse()?),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// Reads the command line into `args`: the shared flags into `common(args)`, every other flag
/// through `own`, which returns false for a flag it does not know (an error then names it).
pub fn parse_flags<A>(
    args: &mut A,
    common: fn(&mut A) -> &mut Common,
    mut own: impl FnMut(&mut A, &str, &mut dyn FnMut() -> Result<String>) -> Result<bool>,
) -> Result<()> {
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val =
            || -> Result<String> { Ok(it.next().ok_or_else(|| format!("{flag} needs a value"))?) };
        if !common(args).take(&flag, &mut val)? && !own(args, &flag, &mut val)? {
            return Err(format!("unknown flag {flag}").into());
        }
    }
    Ok(())
}

/// The corpus, model and evaluation every run of an experiment starts from.
pub struct Setup {
    pub cfg: ModelConfig,
    pub corpus: Corpus,
    pub spec: EvalSpec,
    pub init: Weights,
    /// Local training parameters (steps, batch, lr, 3 warm-up steps); runs set their seeds.
    pub base: TrainParams,
    /// Eval loss of `init`.
    pub initial: f32,
}

impl Setup {
    /// Loads the corpus and the initial model for `c`, printing what it loaded.
    pub fn load(c: &Common) -> Result<Self> {
        autonet_ml::fpenv::flush_denormals();
        if let Some(t) = c.threads {
            tch::set_num_threads(t);
        }
        let cfg = ModelConfig::preset(&c.preset).ok_or("unknown preset")?;
        let t0 = Instant::now();
        let opts = CorpusOptions {
            max_bytes: c.max_mib << 20,
            ..Default::default()
        };
        let corpus = Corpus::from_cargo_lock(&default_workspace_root(), &opts)?;
        let spec = EvalSpec {
            seed: 0xE7A1,
            windows: c.eval_windows,
            batch: 32,
        };
        let init = init_weights(&cfg, 0)?;
        let mut setup = Self {
            cfg,
            corpus,
            spec,
            init,
            base: TrainParams {
                steps: c.local_steps,
                batch: c.batch,
                lr: c.lr,
                warmup_steps: 3,
                ..Default::default()
            },
            initial: 0.0,
        };
        let (train, eval) = setup.split();
        println!(
            "corpus: {} bytes, {} chunks ({} train / {} eval), root {} ({:.1}s)",
            setup.corpus.manifest.total_bytes,
            setup.corpus.chunks.len(),
            train.len(),
            eval.len(),
            setup.corpus.manifest.root,
            t0.elapsed().as_secs_f64()
        );
        println!(
            "model: {} ({} params); threads {}; R={} rounds, S={} local steps, batch {}",
            c.preset,
            setup.cfg.num_params(),
            tch::get_num_threads(),
            c.rounds,
            c.local_steps,
            c.batch
        );
        let initial = evaluate(&setup.cfg, &setup.init, &eval, &setup.spec)?;
        println!("initial eval loss {initial:.4}");
        setup.initial = initial;
        Ok(setup)
    }

    /// Training and evaluation chunks (5% of the chunks, by hash, are held out).
    pub fn split(&self) -> (Vec<&Chunk>, Vec<&Chunk>) {
        corpus::split(&self.corpus.chunks, 50)
    }
}
