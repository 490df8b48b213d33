//! Writes the man pages and shell completions of minirunc from its command-line definition
//! (src/cli.rs), for `make install` and `make deb`: `gen_docs OUTDIR` fills `OUTDIR/man` with
//! minirunc.8 and minirunc-COMMAND.8 (section 8, as runc's), and `OUTDIR/completions` with
//! minirunc.bash, _minirunc (zsh) and minirunc.fish. An example, not part of the runtime: its
//! crates are dev-dependencies and the minirunc binary does not grow.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;
use clap_mangen::Man;
use minirunc::cli::Cli;

const SECTION: &str = "8";

fn main() -> Result<()> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [out] = args.as_slice() else {
        bail!("usage: gen_docs OUTDIR");
    };
    // The built command knows each subcommand's full name (minirunc-create) for its page.
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let man = out.join("man");
    std::fs::create_dir_all(&man).with_context(|| format!("create {}", man.display()))?;
    write_page(&man, cmd.clone())?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_page(&man, sub.clone())?;
    }
    let completions = out.join("completions");
    std::fs::create_dir_all(&completions)
        .with_context(|| format!("create {}", completions.display()))?;
    for (shell, name) in [
        (Shell::Bash, "minirunc.bash"),
        (Shell::Zsh, "_minirunc"),
        (Shell::Fish, "minirunc.fish"),
    ] {
        write(&completions.join(name), |w| {
            clap_complete::generate(shell, &mut cmd.clone(), "minirunc", w);
            Ok(())
        })?;
    }
    Ok(())
}

fn write_page(dir: &Path, cmd: clap::Command) -> Result<()> {
    let page = Man::new(cmd)
        .section(SECTION)
        .source(format!("minirunc {}", env!("CARGO_PKG_VERSION")))
        .manual("System Manager's Manual");
    write(&dir.join(page.get_filename()), |w| Ok(page.render(w)?))
}

fn write(path: &Path, body: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let file = File::create(path).with_context(|| format!("create {}", path.display()))?;
    let mut w = BufWriter::new(file);
    body(&mut w)
        .and_then(|()| Ok(w.flush()?))
        .with_context(|| format!("write {}", path.display()))
}
