use clap::Parser;
use minirunc::cli::{Cli, Command};
use minirunc::container::{self, Paths};
use minirunc::{commands, errors, logging, rootless};

fn main() {
    // Rust starts with SIGPIPE ignored; containers would inherit that through fork and execve,
    // and our own output to a closed pipe would panic. Default it, as for any C program.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let cli = Cli::parse();
    // Before the runtime opens anything: otherwise one of its own fds (the log, the state lock)
    // could take a free number among those passed and reach the container.
    let passed_fds = check_passed_fds(cli.passed_fds());
    if cli.version {
        print_version();
        return;
    }
    if let Err(e) = logging::init(cli.log.as_deref(), &cli.log_format, cli.debug) {
        eprintln!("{}", errors::render(&e));
        std::process::exit(1);
    }
    match passed_fds.and_then(|()| dispatch(&cli)) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            logging::log(logging::Level::Error, &errors::render(&e));
            std::process::exit(1);
        }
    }
}

fn dispatch(cli: &Cli) -> anyhow::Result<i32> {
    rootless::refuse_setid()?;
    let rootless = rootless::resolve(cli.rootless.as_deref())?;
    let Some(command) = &cli.command else {
        anyhow::bail!("no command given: see minirunc --help");
    };
    // These two touch no state: they need no state root, and a user without one may run them.
    match command {
        Command::Spec(a) => return commands::spec(a),
        Command::Features => return commands::features(),
        _ => {}
    }
    let paths = paths(cli, rootless)?;
    if matches!(
        command,
        Command::Create(_) | Command::Run(_) | Command::Exec(_)
    ) {
        minirunc::exe_guard::ensure_read_only_exe()?;
    }
    if matches!(
        command,
        Command::Create(_) | Command::Run(_) | Command::Delete(_)
    ) {
        // Layers whose caller dropped its state go at the latest with the next of these verbs.
        container::reclaim_layers(&paths);
    }
    match command {
        Command::Create(a) => commands::create(&paths, a, cli),
        Command::Start { id } => container::start(&paths, id).map(|_| 0),
        Command::State { id } => commands::state(&paths, id),
        Command::Kill(a) => container::kill(&paths, &a.id, &a.signal, a.all).map(|_| 0),
        Command::Delete(a) => container::delete(&paths, &a.id, a.force).map(|_| 0),
        Command::Run(a) => commands::run(&paths, a, cli),
        Command::List(a) => commands::list(&paths, a),
        Command::Exec(a) => commands::exec(&paths, a),
        Command::Commit(a) => commands::commit(&paths, a),
        Command::Pause { id } => commands::pause(&paths, id),
        Command::Resume { id } => commands::resume(&paths, id),
        Command::Ps(a) => commands::ps(&paths, a),
        Command::Events(a) => commands::events(&paths, a),
        Command::Update(a) => commands::update(&paths, a),
        Command::Gc(a) => commands::gc(&paths, a, cli.data_root.is_some()),
        Command::Spec(_) | Command::Features => unreachable!("answered above"),
    }
}

/// runc's lines in runc's order: version, the commit built from (build.rs), spec, compiler, libseccomp.
fn print_version() {
    println!("minirunc version {}", env!("CARGO_PKG_VERSION"));
    println!("commit: {}", env!("MINIRUNC_COMMIT"));
    println!("spec: {}", minirunc::SPEC_VERSION);
    println!("rust: {}", env!("MINIRUNC_RUSTC"));
    if let Ok(v) = libseccomp::ScmpVersion::current() {
        println!("libseccomp: {v}");
    }
}

/// --root and --data-root, or their defaults: a non-root user's go where that user can write.
fn paths(cli: &Cli, rootless: bool) -> anyhow::Result<Paths> {
    let as_user = rootless && rootless::user_directories();
    let root = match &cli.root {
        Some(r) => r.clone(),
        None if as_user => rootless::default_state_root()?,
        None => "/run/minirunc".into(),
    };
    let data_root = match &cli.data_root {
        Some(d) => Ok(d.clone()),
        None if as_user => rootless::default_data_root(),
        None => Ok("/var/lib/minirunc".into()),
    };
    Ok(Paths::new(root, data_root))
}

/// The fds 3..3+n that the verb passes into the container must be the caller's, all open.
fn check_passed_fds(n: u32) -> anyhow::Result<()> {
    for fd in 3..3 + n as i32 {
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            anyhow::bail!(
                "--preserve-fds: fd {fd} is not open (fds 3 to {} are passed)",
                2 + n
            );
        }
    }
    Ok(())
}
