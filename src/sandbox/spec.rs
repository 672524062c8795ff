//! What one sandbox is: the layers of the charm overlay, the root filesystem image, the
//! namespaces, the identity mapping, the limits and the command. The runner builds a
//! [`SandboxSpec`], `sandbox::run` executes it, and `export-bundle` turns the same spec into
//! an OCI runtime bundle, so both paths give a hook exactly the same world.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The uid and gid range that hook uid/gid 0 maps to when hookbox runs as root and
/// `/etc/subuid` / `/etc/subgid` have no `hookbox` entry: host ids 2147352576 to
/// 2147418111 (65536 ids), the block systemd-nspawn and podman leave unallocated
/// (`0x7FFE0000`), far above any regular or system account.
pub const DEFAULT_ROOT_ID_BASE: u32 = 0x7FFE_0000;

/// The size of the id range mapped when hookbox runs as root.
pub const DEFAULT_ROOT_ID_COUNT: u32 = 65536;

/// The user name hookbox looks up in `/etc/subuid` and `/etc/subgid`.
pub const SUBID_USER: &str = "hookbox";

/// The path where a unit's charm directory appears inside the sandbox, as Juju lays it out.
pub fn default_charm_path(application: &str, unit_number: u32) -> PathBuf {
    PathBuf::from(format!(
        "/var/lib/juju/agents/unit-{application}-{unit_number}/charm"
    ))
}

/// Everything that defines one sandboxed execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxSpec {
    /// Read-only lower layers of the charm overlay, top (newest) first. At least one.
    pub lowers: Vec<Lower>,
    /// The overlay's upper directory: every write of the run lands here. The overlay is
    /// mounted `volatile`: nothing syncs the upper at unmount, so whoever commits the layer
    /// syncs it (syncfs or fsync) before making it part of the state.
    pub upper: PathBuf,
    /// The overlay's work directory: empty, on the same filesystem as `upper`. `run` renames
    /// the `work/` overlayfs leaves in it (with its `volatile` marker) into its
    /// `.hookbox-stale/` directory, so it may be reused; the next run with the same
    /// work dir removes such entries while its sandbox starts.
    pub work: PathBuf,
    /// Where the overlay is mounted inside the sandbox (absolute).
    pub charm_path: PathBuf,
    /// The sandbox's hostname (the unit, e.g. `mysql-0`).
    pub hostname: String,
    /// Network isolation.
    pub network: Network,
    /// The root filesystem image.
    pub image: Image,
    /// The command: `argv[0]` is resolved against `PATH` from `env` when it has no `/`.
    pub argv: Vec<String>,
    /// The complete environment of the command; nothing is inherited.
    pub env: Vec<(String, String)>,
    /// The working directory inside the sandbox (absolute).
    pub cwd: PathBuf,
    /// Time and resource limits.
    pub limits: Limits,
    /// Extra bind mounts from the host, e.g. the hook-tool socket directory and the hookbox
    /// binary as the hook tools.
    pub binds: Vec<BindMount>,
    /// How hook uids and gids map to host ids.
    pub ids: IdMapping,
    /// Handler discovery (DESIGN rule 1), done inside the sandbox after `pivot_root` so no
    /// charm symlink is ever followed on the host: when set, `argv` is replaced by the
    /// handler found, or the run ends as [`super::Outcome::Missing`] when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handler: Option<HandlerLookup>,
}

/// Where the sandbox's init looks for a hook's handler (absolute paths inside the sandbox).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandlerLookup {
    /// The charm's `dispatch`: used when it is an executable regular file.
    pub dispatch: PathBuf,
    /// `hooks/<name>` (or `actions/<name>`): used when anything exists there; a file that
    /// is not executable or has a bad interpreter then fails at exec.
    pub hook: PathBuf,
}

/// One read-only lower layer of the charm overlay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lower {
    /// The layer directory on the host.
    pub path: PathBuf,
    /// The layer's files belong to host ids, not to the sandbox's id range: a charm base
    /// unpacked into the store by root is owned by host uid 0. When hookbox runs as root
    /// ([`IdMapping::Range`]) such a layer is mounted idmapped onto the range
    /// (mount_setattr(2) `MOUNT_ATTR_IDMAP` with the sandbox's user namespace), so hook root
    /// owns what host root owns and can copy it up. A layer committed from a run's upper dir
    /// was written by the mapped root, is already owned by the range and must not be shifted
    /// again (`false`). Rootless runs ignore the flag: the caller's files already map to 0.
    pub idmap: bool,
}

/// One idmapped mount of [`SandboxSpec::idmap_groups`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdmapGroup {
    /// The host directory cloned and idmapped.
    pub mount: PathBuf,
    /// The lowers opened beneath it: index in [`SandboxSpec::lowers`], path relative to it.
    pub members: Vec<(usize, PathBuf)>,
}

impl Lower {
    /// A layer used as it is on disk (a committed layer, or any rootless layer).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            idmap: false,
        }
    }

    /// A layer owned by host ids (a charm base), idmapped onto the range when run as root.
    pub fn idmapped(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            idmap: true,
        }
    }

    /// The layer at `path`, idmapped when `ids` is a root-mode range and the directory
    /// belongs to host uid 0 (a charm base), as is otherwise (a layer the range's root
    /// wrote). For command lines, where the caller does not say which kind a layer is. A
    /// path that cannot be inspected is taken as is: the sandbox setup then names the error.
    pub fn by_owner(path: impl Into<PathBuf>, ids: &IdMapping) -> Self {
        use std::os::unix::fs::MetadataExt;
        let path = path.into();
        let idmap = match ids {
            IdMapping::Rootless { .. } => false,
            IdMapping::Range { .. } => std::fs::metadata(&path).is_ok_and(|m| m.uid() == 0),
        };
        Self { path, idmap }
    }
}

/// Network isolation of a sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// A private network namespace with only loopback up.
    #[default]
    None,
    /// The host's network namespace.
    Host,
}

/// The root filesystem of a sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Image {
    /// The host's `/usr`, `/bin`, `/sbin`, `/lib*` and `/etc`, read-only, on a fresh tmpfs.
    #[default]
    Host,
}

impl Image {
    /// The host directories bind-mounted read-only into the root of this image; those that do
    /// not exist on the host are skipped.
    pub fn host_directories(&self) -> &'static [&'static str] {
        match self {
            Image::Host => &["/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/etc"],
        }
    }
}

/// Time and resource limits of one run. `None` means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Limits {
    /// Wall-clock limit; the whole tree is killed when it passes.
    #[serde(with = "duration_secs", default)]
    pub timeout: Option<Duration>,
    /// Memory limit in bytes (cgroup memory limit, else `RLIMIT_AS`).
    pub memory_bytes: Option<u64>,
    /// Maximum number of processes and threads (cgroup pids limit, else `RLIMIT_NPROC`).
    pub pids: Option<u64>,
    /// CPU bandwidth as a fraction of one CPU, e.g. `0.5` (cgroup cpu quota only).
    pub cpu: Option<f64>,
}

impl Eq for Limits {}

/// A host path bound into the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindMount {
    /// The host path (file or directory).
    pub source: PathBuf,
    /// The absolute path inside the sandbox.
    pub target: PathBuf,
    /// Whether the sandbox may write through it.
    pub writable: bool,
}

/// One contiguous id mapping line: `inside..inside+count` maps to `outside..outside+count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdRange {
    /// First id inside the sandbox.
    pub inside: u32,
    /// First id on the host.
    pub outside: u32,
    /// Number of ids.
    pub count: u32,
}

/// How hook ids map to host ids. Hook uid 0 is never host uid 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum IdMapping {
    /// Unprivileged caller: its uid and gid become 0 inside, nothing else is mapped.
    Rootless {
        /// The caller's host uid.
        uid: u32,
        /// The caller's host gid.
        gid: u32,
    },
    /// hookbox runs as root: 0 inside maps to an unprivileged host range.
    Range {
        /// The uid range (inside starts at 0).
        uid: IdRange,
        /// The gid range (inside starts at 0).
        gid: IdRange,
    },
}

impl IdMapping {
    /// The mapping for the current process: rootless for a non-root caller; as root, the
    /// `hookbox` entries of `/etc/subuid` and `/etc/subgid`, else the default block
    /// ([`DEFAULT_ROOT_ID_BASE`], [`DEFAULT_ROOT_ID_COUNT`]).
    pub fn for_current_user() -> Self {
        let uid = rustix::process::geteuid().as_raw();
        let gid = rustix::process::getegid().as_raw();
        if uid != 0 {
            return IdMapping::Rootless { uid, gid };
        }
        let range = |file: &str| {
            std::fs::read_to_string(file)
                .ok()
                .and_then(|text| subid_range(&text, SUBID_USER))
                .unwrap_or(IdRange {
                    inside: 0,
                    outside: DEFAULT_ROOT_ID_BASE,
                    count: DEFAULT_ROOT_ID_COUNT,
                })
        };
        IdMapping::Range {
            uid: range("/etc/subuid"),
            gid: range("/etc/subgid"),
        }
    }

    /// The host uid and gid that the hook's uid 0 and gid 0 are.
    pub fn host_root(&self) -> (u32, u32) {
        match self {
            IdMapping::Rootless { uid, gid } => (*uid, *gid),
            IdMapping::Range { uid, gid } => (uid.outside, gid.outside),
        }
    }

    /// The uid map lines (`inside outside count`).
    pub fn uid_ranges(&self) -> Vec<IdRange> {
        match self {
            IdMapping::Rootless { uid, .. } => vec![IdRange {
                inside: 0,
                outside: *uid,
                count: 1,
            }],
            IdMapping::Range { uid, .. } => vec![*uid],
        }
    }

    /// The gid map lines (`inside outside count`).
    pub fn gid_ranges(&self) -> Vec<IdRange> {
        match self {
            IdMapping::Rootless { gid, .. } => vec![IdRange {
                inside: 0,
                outside: *gid,
                count: 1,
            }],
            IdMapping::Range { gid, .. } => vec![*gid],
        }
    }
}

/// The first `user:start:count` line for `user` in a subuid/subgid file, with at least one id.
pub fn subid_range(text: &str, user: &str) -> Option<IdRange> {
    text.lines().find_map(|line| {
        let mut fields = line.trim().split(':');
        let (name, start, count) = (fields.next()?, fields.next()?, fields.next()?);
        if name != user {
            return None;
        }
        let outside = start.trim().parse().ok()?;
        let count: u32 = count.trim().parse().ok()?;
        (count > 0 && outside != 0).then_some(IdRange {
            inside: 0,
            outside,
            count,
        })
    })
}

impl SandboxSpec {
    /// A spec with the defaults a hook gets: no network, the host image, `cwd` =
    /// `charm_path`, no limits, no extra binds, the id mapping and env given.
    pub fn new(
        ids: IdMapping,
        lowers: Vec<Lower>,
        upper: PathBuf,
        work: PathBuf,
        charm_path: PathBuf,
        argv: Vec<String>,
        env: Vec<(String, String)>,
    ) -> Self {
        Self {
            lowers,
            upper,
            work,
            cwd: charm_path.clone(),
            charm_path,
            hostname: "hookbox".to_owned(),
            network: Network::None,
            image: Image::Host,
            argv,
            env,
            limits: Limits::default(),
            binds: Vec::new(),
            ids,
            handler: None,
        }
    }

    /// Whether `lower` is idmapped: marked [`Lower::idmap`], and hookbox runs as root.
    fn idmaps(&self, lower: &Lower) -> bool {
        lower.idmap && matches!(self.ids, IdMapping::Range { .. })
    }

    /// The deepest host directory holding the upper and work dirs and every lower layer the
    /// overlay takes from the host as it is (an idmapped one is staged elsewhere first).
    /// overlayfs records each directory it is given as a path from the caller's root and
    /// shows it in /proc/<pid>/mountinfo; the sandbox init hands them over from this root,
    /// so a hook reads `upperdir=/upper`, not where the state lives on the host.
    pub fn layers_root(&self) -> PathBuf {
        let mut dirs = self
            .lowers
            .iter()
            .filter(|l| !self.idmaps(l))
            .map(|l| l.path.as_path())
            .chain([self.upper.as_path(), self.work.as_path()]);
        let first = dirs.next().unwrap_or(Path::new("/"));
        let mut common: Vec<Component> = first.components().collect();
        for dir in dirs {
            let shared = common
                .iter()
                .zip(dir.components())
                .take_while(|(a, b)| *a == b)
                .count();
            common.truncate(shared);
        }
        let root: PathBuf = common.into_iter().collect();
        if root.is_absolute() {
            root
        } else {
            PathBuf::from("/")
        }
    }

    /// The idmapped mounts the helper makes, in order. A lower is idmapped when it is marked
    /// [`Lower::idmap`] and hookbox runs as root (rootless, none is). One mount for each
    /// directory that is the parent of two or more idmapped lowers (cloned and idmapped once, the layers then
    /// opened beneath it), one for each other idmapped lower itself. Each group names its
    /// lowers by index in [`SandboxSpec::lowers`] with their path relative to the mount.
    pub fn idmap_groups(&self) -> Vec<IdmapGroup> {
        let idmapped: Vec<(usize, &Lower)> = self
            .lowers
            .iter()
            .enumerate()
            .filter(|(_, l)| self.idmaps(l))
            .collect();
        let parent_and_name = |lower: &Lower| match (lower.path.parent(), lower.path.file_name()) {
            (Some(parent), Some(name)) if !parent.as_os_str().is_empty() => {
                Some((parent.to_owned(), PathBuf::from(name)))
            }
            _ => None,
        };
        // How many idmapped lowers each parent directory holds (one pass: fifty layers must
        // not cost fifty squared path comparisons, in the helper and again in the init).
        let mut siblings: std::collections::HashMap<&Path, usize> = Default::default();
        for (_, lower) in &idmapped {
            if let Some(parent) = lower.path.parent() {
                *siblings.entry(parent).or_default() += 1;
            }
        }
        let mut groups: Vec<IdmapGroup> = Vec::new();
        let mut group_of: std::collections::HashMap<PathBuf, usize> = Default::default();
        for &(index, lower) in &idmapped {
            let shared = parent_and_name(lower)
                .filter(|(parent, _)| siblings.get(parent.as_path()).is_some_and(|n| *n > 1));
            match shared {
                Some((parent, name)) => match group_of.get(&parent) {
                    Some(&group) => groups[group].members.push((index, name)),
                    None => {
                        group_of.insert(parent.clone(), groups.len());
                        groups.push(IdmapGroup {
                            mount: parent,
                            members: vec![(index, name)],
                        });
                    }
                },
                None => groups.push(IdmapGroup {
                    mount: lower.path.clone(),
                    members: vec![(index, PathBuf::from("."))],
                }),
            }
        }
        groups
    }

    /// The value of `name` in the spec's environment.
    pub fn env_var(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The problems that make this spec unusable, checked before anything is spawned.
    pub fn validate(&self) -> Result<(), String> {
        fn absolute(what: &str, path: &Path) -> Result<(), String> {
            if path.is_absolute() {
                Ok(())
            } else {
                Err(format!("{what} {} is not absolute", path.display()))
            }
        }
        if self.lowers.is_empty() {
            return Err("no lower layer".to_owned());
        }
        if self.argv.is_empty() {
            return Err("no command".to_owned());
        }
        for lower in &self.lowers {
            absolute("lower layer", &lower.path)?;
        }
        absolute("upper dir", &self.upper)?;
        absolute("work dir", &self.work)?;
        absolute("charm path", &self.charm_path)?;
        // The overlay needs a directory of its own on the sandbox's root tmpfs: not the root,
        // not in or over the image or the sandbox's own /proc and /dev.
        let taken = self
            .image
            .host_directories()
            .iter()
            .chain(&["/proc", "/dev"])
            .find(|dir| self.charm_path.starts_with(dir));
        if self.charm_path.parent().is_none() {
            return Err("charm path / would cover the whole sandbox".to_owned());
        }
        if let Some(dir) = taken {
            return Err(format!(
                "charm path {} is inside the sandbox's {dir}, which the sandbox mounts itself",
                self.charm_path.display()
            ));
        }
        absolute("working directory", &self.cwd)?;
        if let Some(handler) = &self.handler {
            absolute("dispatch path", &handler.dispatch)?;
            absolute("hook path", &handler.hook)?;
        }
        for bind in &self.binds {
            absolute("bind source", &bind.source)?;
            absolute("bind target", &bind.target)?;
        }
        if self.hostname.is_empty() || self.hostname.len() > 64 {
            return Err(format!("hostname {:?} is not 1 to 64 bytes", self.hostname));
        }
        if let Some(cpu) = self.limits.cpu
            && !(cpu.is_finite() && cpu > 0.0)
        {
            return Err(format!("cpu limit {cpu} is not a positive fraction"));
        }
        Ok(())
    }
}

/// Serialises an optional duration as fractional seconds.
mod duration_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<Duration>, ser: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => ser.serialize_some(&d.as_secs_f64()),
            None => ser.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Option<Duration>, D::Error> {
        let secs = Option::<f64>::deserialize(de)?;
        secs.map(|s| Duration::try_from_secs_f64(s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subid_entry_is_found_and_bad_lines_skipped() {
        let text = "alice:100000:65536\nhookbox:0:10\nhookbox:x:1\nhookbox:200000:65536\n";
        assert_eq!(
            subid_range(text, "hookbox"),
            Some(IdRange {
                inside: 0,
                outside: 200000,
                count: 65536
            })
        );
        assert_eq!(subid_range(text, "bob"), None);
    }

    #[test]
    fn layers_root_is_the_deepest_common_directory_of_the_host_layers() {
        let spec = |ids: IdMapping, lowers: Vec<Lower>, upper: &str, work: &str| {
            SandboxSpec::new(
                ids,
                lowers,
                upper.into(),
                work.into(),
                default_charm_path("app", 0),
                vec!["/bin/true".into()],
                Vec::new(),
            )
        };
        let rootless = IdMapping::Rootless {
            uid: 1000,
            gid: 1000,
        };
        let ids = IdRange {
            inside: 0,
            outside: 100_000,
            count: 65_536,
        };
        let range = IdMapping::Range { uid: ids, gid: ids };
        let lowers = || {
            vec![
                Lower::new("/state/units/a/layers/1"),
                Lower::idmapped("/state/store/charm"),
            ]
        };
        let units = spec(
            rootless.clone(),
            lowers(),
            "/state/units/a/upper",
            "/state/units/a/work",
        );
        assert_eq!(units.layers_root(), Path::new("/state"));
        // As root an idmapped lower is staged, not taken from its host path.
        let units = spec(
            range,
            lowers(),
            "/state/units/a/upper",
            "/state/units/a/work",
        );
        assert_eq!(units.layers_root(), Path::new("/state/units/a"));
        // A shared name prefix is not a shared directory.
        let apart = spec(
            rootless,
            vec![Lower::new("/tmp/ab/lower")],
            "/tmp/abc/upper",
            "/tmp/abc/work",
        );
        assert_eq!(apart.layers_root(), Path::new("/tmp"));
    }

    #[test]
    fn spec_round_trips_through_json() {
        let mut spec = SandboxSpec::new(
            IdMapping::for_current_user(),
            vec![Lower::idmapped("/l1"), Lower::new("/l2")],
            "/u".into(),
            "/w".into(),
            default_charm_path("app", 0),
            vec!["/bin/true".into()],
            vec![("PATH".into(), "/usr/bin".into())],
        );
        spec.limits.timeout = Some(Duration::from_millis(1500));
        spec.limits.cpu = Some(0.5);
        let text = serde_json::to_string(&spec).unwrap();
        let back: SandboxSpec = serde_json::from_str(&text).unwrap();
        assert_eq!(back, spec);
        assert_eq!(
            spec.charm_path,
            PathBuf::from("/var/lib/juju/agents/unit-app-0/charm")
        );
    }

    #[test]
    fn idmapped_lowers_sharing_a_parent_are_one_mount() {
        let mut spec = SandboxSpec::new(
            IdMapping::for_current_user(),
            vec![
                Lower::idmapped("/fifty/l0"),
                Lower::new("/runtime/l9"),
                Lower::idmapped("/fifty/l1"),
                Lower::idmapped("/store/base"),
                Lower::idmapped("/fifty/l2"),
            ],
            "/u".into(),
            "/w".into(),
            "/c".into(),
            vec!["true".into()],
            vec![],
        );
        spec.ids = IdMapping::Range {
            uid: IdRange {
                inside: 0,
                outside: 100_000,
                count: 65536,
            },
            gid: IdRange {
                inside: 0,
                outside: 100_000,
                count: 65536,
            },
        };
        assert_eq!(
            spec.idmap_groups(),
            [
                IdmapGroup {
                    mount: "/fifty".into(),
                    members: vec![(0, "l0".into()), (2, "l1".into()), (4, "l2".into())],
                },
                IdmapGroup {
                    mount: "/store/base".into(),
                    members: vec![(3, ".".into())],
                },
            ]
        );
        // Rootless, nothing is idmapped.
        spec.ids = IdMapping::Rootless {
            uid: 1000,
            gid: 1000,
        };
        assert_eq!(spec.idmap_groups(), []);
    }

    #[test]
    fn relative_paths_are_refused() {
        let spec = SandboxSpec::new(
            IdMapping::for_current_user(),
            vec![Lower::new("rel")],
            "/u".into(),
            "/w".into(),
            "/c".into(),
            vec!["true".into()],
            vec![],
        );
        assert!(spec.validate().unwrap_err().contains("rel"));
    }
}
