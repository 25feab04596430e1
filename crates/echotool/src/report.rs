//! `echotool report`: a bench report shown again, or several load generators' reports merged
//! into one, then printed and written like a bench run's.

use anyhow::Result;

use crate::bench::{Outputs, verdict};
use crate::cli::ReportArgs;

/// Reads every file, merges them (one is shown as it is), and reports; exit status 1 when
/// the merged report holds an altered echo or a row that measured nothing.
pub fn run(args: ReportArgs, quiet: bool) -> Result<()> {
    let outputs = Outputs::check(&args.output)?;
    let mut reports = Vec::with_capacity(args.files.len());
    for file in &args.files {
        reports.push((file.display().to_string(), echotool_bench::read(file)?));
    }
    let report = echotool_bench::merge(reports)?;
    outputs.write(&report)?;
    verdict(&report, quiet)
}
