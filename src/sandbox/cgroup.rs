//! Resource limits of a run: a cgroup per run where the tree allows it (v2 with the
//! controllers delegated to our cgroup, else v1 controllers we can write, as root), rlimits
//! for what is left, and a clear warning for what nothing can enforce.
//!
//! The cgroup files are written directly: a handful of writes to well-known files, which is
//! all this needs; the libcgroups crate would add a systemd/dbus stack for nothing.

use std::io;
use std::path::{Path, PathBuf};

use super::SandboxError;
use super::spec::Limits;

const V1_ROOT: &str = "/sys/fs/cgroup";
const CPU_PERIOD_US: u64 = 100_000;

/// The cgroup hierarchy a run's limits live in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hierarchy {
    /// The unified hierarchy, in a delegated subtree.
    V2,
    /// Per-controller v1 hierarchies.
    V1,
}

/// How a run's limits are enforced.
#[derive(Debug, Default)]
pub struct LimitPlan {
    /// The run's cgroup directories (one for v2, one per controller for v1).
    dirs: Vec<(PathBuf, Hierarchy)>,
    /// The directory holding the memory controller's files, if any.
    memory: Option<(PathBuf, Hierarchy)>,
    /// The directory holding the pids controller's files, if any.
    pids: Option<(PathBuf, Hierarchy)>,
    /// Enforce the memory limit with `RLIMIT_AS`.
    pub rlimit_memory: bool,
    /// Enforce the pids limit with `RLIMIT_NPROC`.
    pub rlimit_pids: bool,
    /// What could not be enforced as asked, for the report and a one-time warning.
    pub warnings: Vec<String>,
}

impl LimitPlan {
    /// Creates the run's cgroups and writes the limits; falls back to rlimits with warnings.
    /// The cgroups are named after `run_id`, every character but ASCII letters, digits, `-`
    /// and `_` replaced by `-` (a context id such as `wp/0-install-7` names one directory).
    pub fn prepare(limits: &Limits, run_id: &str) -> Result<Self, SandboxError> {
        let run_id = &cgroup_name(run_id);
        let mut plan = LimitPlan::default();
        let wanted: Vec<&str> = [
            limits.memory_bytes.map(|_| "memory"),
            limits.pids.map(|_| "pids"),
            limits.cpu.map(|_| "cpu"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if wanted.is_empty() {
            return Ok(plan);
        }
        let mut missing = wanted.clone();
        let v2_dir = delegated_v2(&wanted)
            .map(|base| base.join(format!("hookbox-{run_id}")))
            .or_else(|| {
                if !rustix::process::geteuid().is_root() {
                    return None;
                }
                v2_parent_of_runs(&v2_mount()?, &wanted).map(|parent| parent.join(run_id))
            });
        if let Some(dir) = v2_dir
            && std::fs::create_dir(&dir).is_ok()
        {
            plan.dirs.push((dir.clone(), Hierarchy::V2));
            plan.write_v2(&dir, limits)?;
            missing.clear();
        }
        for controller in missing.clone() {
            let Some(dir) = v1_dir(controller, run_id) else {
                continue;
            };
            plan.dirs.push((dir.clone(), Hierarchy::V1));
            plan.write_v1(controller, &dir, limits)?;
            missing.retain(|c| *c != controller);
        }
        for controller in missing {
            match controller {
                "memory" => {
                    plan.rlimit_memory = true;
                    plan.warnings.push(
                        "no writable memory cgroup: the memory limit is enforced with \
                         RLIMIT_AS (address space per process, not resident memory)"
                            .to_owned(),
                    );
                }
                "pids" => {
                    plan.rlimit_pids = true;
                    plan.warnings.push(
                        "no writable pids cgroup: the pids limit is enforced with RLIMIT_NPROC \
                         (processes of the sandbox's root user)"
                            .to_owned(),
                    );
                }
                _ => plan.warnings.push(
                    "no writable cpu cgroup: the cpu limit is not enforced (no rlimit \
                     equivalent); delegate the cpu controller or run as root"
                        .to_owned(),
                ),
            }
        }
        Ok(plan)
    }

    fn write_v2(&mut self, dir: &Path, limits: &Limits) -> Result<(), SandboxError> {
        if let Some(bytes) = limits.memory_bytes {
            write(dir, "memory.max", &bytes.to_string())?;
            let _ = write(dir, "memory.swap.max", "0");
            self.memory = Some((dir.to_owned(), Hierarchy::V2));
        }
        if let Some(pids) = limits.pids {
            write(dir, "pids.max", &pids.to_string())?;
            self.pids = Some((dir.to_owned(), Hierarchy::V2));
        }
        if let Some(cpu) = limits.cpu {
            write(
                dir,
                "cpu.max",
                &format!("{} {CPU_PERIOD_US}", quota_us(cpu)),
            )?;
        }
        Ok(())
    }

    fn write_v1(
        &mut self,
        controller: &str,
        dir: &Path,
        limits: &Limits,
    ) -> Result<(), SandboxError> {
        match (controller, limits) {
            (
                "memory",
                Limits {
                    memory_bytes: Some(bytes),
                    ..
                },
            ) => {
                write(dir, "memory.limit_in_bytes", &bytes.to_string())?;
                // With swap accounting, memory+swap too, so the hog cannot swap out.
                if dir.join("memory.memsw.limit_in_bytes").exists() {
                    write(dir, "memory.memsw.limit_in_bytes", &bytes.to_string())?;
                }
                self.memory = Some((dir.to_owned(), Hierarchy::V1));
            }
            ("pids", Limits { pids: Some(n), .. }) => {
                write(dir, "pids.max", &n.to_string())?;
                self.pids = Some((dir.to_owned(), Hierarchy::V1));
            }
            ("cpu", Limits { cpu: Some(cpu), .. }) => {
                write(dir, "cpu.cfs_period_us", &CPU_PERIOD_US.to_string())?;
                write(dir, "cpu.cfs_quota_us", &quota_us(*cpu).to_string())?;
            }
            _ => {}
        }
        Ok(())
    }

    /// The run's v2 cgroup directory (there is at most one): the helper forks the sandbox's
    /// init into it (so everything the init forks is inside).
    pub fn v2_dir(&self) -> Option<PathBuf> {
        self.dirs
            .iter()
            .find(|(_, hierarchy)| *hierarchy == Hierarchy::V2)
            .map(|(dir, _)| dir.clone())
    }

    /// The `tasks` files of the run's v1 cgroups: the sandbox's init (single-threaded, still
    /// host uid 0 before it becomes root of its namespace) writes `0` to each before it
    /// forks anything, moving itself (and so everything it forks).
    /// A thread that moves itself skips the global lock a move by pid takes
    /// (`cgroup_threadgroup_rwsem`, whose writer waits for an RCU grace period: about 10 ms
    /// per run when another process writes the pid to `cgroup.procs`).
    pub fn self_join_files(&self) -> Vec<PathBuf> {
        self.dirs
            .iter()
            .filter(|(_, hierarchy)| *hierarchy == Hierarchy::V1)
            .map(|(dir, _)| dir.join("tasks"))
            .collect()
    }

    /// Whether the kernel killed a process of the run for exceeding the memory limit.
    pub fn memory_limit_hit(&self) -> bool {
        match &self.memory {
            Some((dir, Hierarchy::V1)) => counter(&dir.join("memory.oom_control"), "oom_kill"),
            Some((dir, Hierarchy::V2)) => counter(&dir.join("memory.events"), "oom_kill"),
            None => false,
        }
    }

    /// Whether a fork of the run was refused by the pids limit.
    pub fn pids_limit_hit(&self) -> bool {
        match &self.pids {
            Some((dir, _)) => counter(&dir.join("pids.events"), "max"),
            None => false,
        }
    }

    /// Removes the run's cgroups (they are empty once the pid namespace is gone); `false`
    /// when one is left.
    pub async fn remove(self) -> bool {
        let mut all = true;
        for (dir, _) in &self.dirs {
            for attempt in 0..50 {
                match std::fs::remove_dir(dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                    Err(e) if attempt == 49 => {
                        tracing::warn!(cgroup = %dir.display(), error = %e, "could not remove the run's cgroup");
                        all = false;
                    }
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
                }
            }
        }
        all
    }

    /// Lists the run's v2 cgroup directory in `record`, for [`remove_stale`] after a killed
    /// runner: it is made under the runner's own cgroup, which the process that recovers may
    /// not share (v1 cgroups are found by the run's name alone). Replaced atomically but not
    /// synced: cgroups do not outlive a reboot, and a record lost to a crash of the machine
    /// names nothing left. Returns whether a record was written.
    pub fn record(&self, record: &Path) -> Result<bool, SandboxError> {
        let Some(dir) = self.v2_dir() else {
            return Ok(false);
        };
        let bytes = serde_json::to_vec(&[dir]).expect("paths serialise");
        crate::store::atomic::write_file_unsynced(record, &bytes).map_err(|e| {
            SandboxError::host("record the run's cgroups in", record)(io::Error::other(e))
        })?;
        Ok(true)
    }
}

/// Removes the cgroups of the run `run_id` whose runner was killed before it removed them:
/// the v2 one listed in `record` ([`LimitPlan::record`]) and the v1 ones its name alone
/// locates; then the record. The run's processes die with its pid namespace,
/// asynchronously: a cgroup still busy is retried for up to a second, then left with its
/// record for the next recovery.
pub fn remove_stale(record: &Path, run_id: &str) {
    remove_stale_under(Path::new(V1_ROOT), record, run_id)
}

fn remove_stale_under(cgroup_root: &Path, record: &Path, run_id: &str) {
    let name = cgroup_name(run_id);
    let mut dirs: Vec<PathBuf> = ["memory", "pids", "cpu"]
        .iter()
        .map(|controller| cgroup_root.join(controller).join("hookbox").join(&name))
        .collect();
    let listed: Vec<PathBuf> = std::fs::read(record)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    // Only what a run of this name creates, under the cgroup mount.
    for dir in listed {
        if is_cgroup_of(&dir, cgroup_root, &name) && !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    let mut all = true;
    for dir in dirs {
        for attempt in 0..100 {
            match std::fs::remove_dir(&dir) {
                Ok(()) => {
                    tracing::info!(cgroup = %dir.display(), "removed the cgroup of a killed run");
                    break;
                }
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < 99 => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                Err(e) => {
                    tracing::warn!(cgroup = %dir.display(), error = %e, "could not remove the cgroup of a killed run");
                    all = false;
                    break;
                }
            }
        }
    }
    if all {
        let _ = std::fs::remove_file(record);
    }
}

/// Whether `dir` is a cgroup a run named `name` makes: `<root>/.../hookbox-<name>` (v2) or
/// `<root>/<controller>/hookbox/<name>` (v1), with no `..` on the way.
fn is_cgroup_of(dir: &Path, root: &Path, name: &str) -> bool {
    use std::path::Component;
    let Ok(inside) = dir.strip_prefix(root) else {
        return false;
    };
    if inside
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        return false;
    }
    let last = dir.file_name().and_then(|n| n.to_str());
    let parent = dir
        .parent()
        .and_then(Path::file_name)
        .and_then(|n| n.to_str());
    last == Some(&format!("hookbox-{name}")) || (last == Some(name) && parent == Some("hookbox"))
}

/// `run_id` as one directory name.
fn cgroup_name(run_id: &str) -> String {
    run_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

fn quota_us(cpu: f64) -> u64 {
    ((cpu * CPU_PERIOD_US as f64) as u64).max(1000)
}

fn write(dir: &Path, file: &str, value: &str) -> Result<(), SandboxError> {
    let path = dir.join(file);
    std::fs::write(&path, value).map_err(SandboxError::host("write cgroup file", path))
}

/// `name N` in a flat-keyed cgroup file, with N > 0.
fn counter(path: &Path, name: &str) -> bool {
    std::fs::read_to_string(path).is_ok_and(|text| {
        text.lines().any(|line| {
            let mut fields = line.split_whitespace();
            fields.next() == Some(name)
                && fields
                    .next()
                    .and_then(|n| n.parse::<u64>().ok())
                    .is_some_and(|n| n > 0)
        })
    })
}

/// The cgroup v2 mount: `/sys/fs/cgroup` (unified) or `/sys/fs/cgroup/unified` (hybrid).
fn v2_mount() -> Option<PathBuf> {
    ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .into_iter()
        .map(PathBuf::from)
        .find(|m| m.join("cgroup.subtree_control").exists())
}

/// The controllers a cgroup enables for its children.
fn subtree_controllers(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("cgroup.subtree_control"))
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// Whether the cgroup `dir` enables every one of `wanted` for its children.
fn enables_all(dir: &Path, wanted: &[&str]) -> bool {
    let enabled = subtree_controllers(dir);
    wanted.iter().all(|c| enabled.iter().any(|e| e == c))
}

/// As root on a v2 host, `<mount>/hookbox/`, the parent of every run's cgroup as in v1
/// (`<controller>/hookbox/<run>`), created with the wanted controllers enabled for its
/// children; when the root cgroup enables them for its own (systemd does, on a unified
/// host). Root's own cgroup is usually a session scope, which holds processes and so can
/// enable nothing for children (the no-internal-process rule); `hookbox/` holds none.
fn v2_parent_of_runs(mount: &Path, wanted: &[&str]) -> Option<PathBuf> {
    if !enables_all(mount, wanted) {
        return None;
    }
    let parent = hookbox_parent(mount)?;
    let enabled = subtree_controllers(&parent);
    let enable: Vec<String> = wanted
        .iter()
        .filter(|c| !enabled.iter().any(|e| e == *c))
        .map(|c| format!("+{c}"))
        .collect();
    if !enable.is_empty()
        && std::fs::write(parent.join("cgroup.subtree_control"), enable.join(" ")).is_err()
    {
        return None;
    }
    Some(parent)
}

/// Our own v2 cgroup when it is writable and has every wanted controller enabled for its
/// children (systemd `Delegate=yes` on a cgroup we are alone in, or the root cgroup of a
/// container).
fn delegated_v2(wanted: &[&str]) -> Option<PathBuf> {
    let mount = v2_mount()?;
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let relative = own.lines().find_map(|l| l.strip_prefix("0::"))?;
    let base = mount.join(relative.trim_start_matches('/'));
    (enables_all(&base, wanted) && rustix::fs::access(&base, rustix::fs::Access::WRITE_OK).is_ok())
        .then_some(base)
}

/// `<hierarchy>/hookbox/`, the parent of the runs' cgroups, created if need be.
fn hookbox_parent(hierarchy: &Path) -> Option<PathBuf> {
    let parent = hierarchy.join("hookbox");
    match std::fs::create_dir(&parent) {
        Ok(()) => Some(parent),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Some(parent),
        Err(_) => None,
    }
}

/// `/sys/fs/cgroup/<controller>/hookbox/<run-id>`, created, when that v1 hierarchy exists
/// and is writable.
fn v1_dir(controller: &str, run_id: &str) -> Option<PathBuf> {
    let hierarchy = Path::new(V1_ROOT).join(controller);
    if !hierarchy.join("cgroup.procs").exists()
        || rustix::fs::access(&hierarchy, rustix::fs::Access::WRITE_OK).is_err()
    {
        return None;
    }
    let parent = hookbox_parent(&hierarchy)?;
    let dir = parent.join(run_id);
    std::fs::create_dir(&dir).ok()?;
    Some(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_root_on_v2_the_runs_get_a_parent_with_the_wanted_controllers() {
        // A stand-in for the v2 mount: its root enables memory, pids and cpu for children.
        let mount = tempfile::tempdir().unwrap();
        std::fs::write(
            mount.path().join("cgroup.subtree_control"),
            "cpuset cpu io memory pids\n",
        )
        .unwrap();
        let parent = v2_parent_of_runs(mount.path(), &["memory", "pids"]).unwrap();
        assert_eq!(parent, mount.path().join("hookbox"));
        assert_eq!(
            std::fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap(),
            "+memory +pids"
        );
        // Once enabled, nothing is written again.
        std::fs::write(parent.join("cgroup.subtree_control"), "memory pids").unwrap();
        v2_parent_of_runs(mount.path(), &["pids"]).unwrap();
        assert_eq!(
            std::fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap(),
            "memory pids"
        );
        // A controller the root does not offer: no v2 cgroup.
        assert_eq!(v2_parent_of_runs(mount.path(), &["hugetlb"]), None);
    }

    #[test]
    fn a_run_records_its_v2_cgroup_only() {
        let tmp = tempfile::tempdir().unwrap();
        let record = tmp.path().join("run-cgroups.json");
        let v1 = LimitPlan {
            dirs: vec![(
                PathBuf::from("/sys/fs/cgroup/pids/hookbox/r"),
                Hierarchy::V1,
            )],
            ..LimitPlan::default()
        };
        assert!(!v1.record(&record).unwrap());
        assert!(!record.exists());
        let v2_dir = PathBuf::from("/sys/fs/cgroup/user.slice/hookbox-r");
        let v2 = LimitPlan {
            dirs: vec![(v2_dir.clone(), Hierarchy::V2)],
            ..LimitPlan::default()
        };
        assert!(v2.record(&record).unwrap());
        let listed: Vec<PathBuf> =
            serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
        assert_eq!(listed, vec![v2_dir]);
    }

    #[test]
    fn recovery_removes_the_recorded_cgroups_of_the_run_and_nothing_else() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("cgroup");
        // A v2 cgroup under some other process's cgroup, a v1 one, and bystanders.
        let v2 = root.join("user.slice/session-9.scope/hookbox-wp-0-install-3");
        let v1 = root.join("pids/hookbox/wp-0-install-3");
        let other_run = root.join("user.slice/hookbox-wp-0-install-4");
        let not_a_run = root.join("user.slice/session-9.scope/payload");
        for dir in [&v2, &v1, &other_run, &not_a_run] {
            std::fs::create_dir_all(dir).unwrap();
        }
        let record = tmp.path().join("cgroups.json");
        let listed = vec![
            v2.clone(),
            other_run.clone(),
            not_a_run.clone(),
            tmp.path().join("elsewhere/hookbox-wp-0-install-3"),
            root.join("user.slice/../hookbox-wp-0-install-3"),
        ];
        std::fs::write(&record, serde_json::to_vec(&listed).unwrap()).unwrap();
        remove_stale_under(&root, &record, "wp/0-install-3");
        assert!(!v2.exists() && !v1.exists());
        assert!(other_run.exists() && not_a_run.exists());
        assert!(!record.exists());
        // Without a record, the v1 cgroups are still found by name.
        std::fs::create_dir_all(&v1).unwrap();
        remove_stale_under(&root, &record, "wp/0-install-3");
        assert!(!v1.exists());
    }

    #[test]
    fn a_context_id_names_one_cgroup_directory() {
        assert_eq!(
            cgroup_name("wp/0-install-1234"),
            "wp-0-install-1234".to_owned()
        );
        assert_eq!(cgroup_name("../x y"), "---x-y".to_owned());
        assert_eq!(cgroup_name("run_01-ab"), "run_01-ab".to_owned());
    }
}
