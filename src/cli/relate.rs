//! `hookbox relate A[:EP] B[:EP]` and `hookbox unrelate`.

use clap::Args;
use hookbox::exit::ExitStatus;
use hookbox::runner::relations::{self, EndpointSpec, RelateReport, UnrelateTarget};
use hookbox::store::StateRoot;

use super::output::print_json;
use super::units;

/// Relate two applications (Juju's `integrate`).
///
/// Each side is APP or APP:ENDPOINT. An endpoint left out is inferred as Juju does: the
/// one pair with the same interface where one side provides and the other requires
/// (the implicit juju-info endpoint only when nothing else matches); more than one pair is
/// refused with the candidates listed. Refused (exit 4, nothing changed): unknown
/// application or endpoint, different interfaces, two providers or two requirers, a peer
/// endpoint (peer relations exist from deploy), a relation that already exists, an
/// endpoint's `limit` reached, a container-scoped relation without a subordinate side.
///
/// Then every unit of each side runs <endpoint>-relation-created, and for each unit of the
/// other side <endpoint>-relation-joined and -changed; settings written with relation-set
/// run relation-changed on the other side, until nothing changes. A unit in error keeps
/// its relation hooks queued until resolved. Exit 1 when a unit ended in error.
#[derive(Debug, Args)]
pub struct RelateArgs {
    /// One side: APP or APP:ENDPOINT.
    pub a: EndpointSpec,
    /// The other side: APP or APP:ENDPOINT.
    pub b: EndpointSpec,
    /// How many units run hooks at once [default: the number of CPUs].
    #[arg(long, value_name = "N")]
    pub parallel: Option<usize>,
    /// Print the relation and the hook runs as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Remove a relation (Juju's `remove-relation`).
///
/// Name it by its two sides (APP or APP:ENDPOINT each; refused when more than one relation
/// matches) or by its id alone (`3` or `db:3`). Every unit of each side runs
/// <endpoint>-relation-departed for each unit of the other side (JUJU_DEPARTING_UNIT set),
/// then <endpoint>-relation-broken. Peer relations cannot be removed (exit 4).
#[derive(Debug, Args)]
pub struct UnrelateArgs {
    /// One side (APP or APP:ENDPOINT), or the relation id.
    pub a: String,
    /// The other side (APP or APP:ENDPOINT); absent when A is a relation id.
    pub b: Option<EndpointSpec>,
    /// How many units run hooks at once [default: the number of CPUs].
    #[arg(long, value_name = "N")]
    pub parallel: Option<usize>,
    /// Print the relation and the hook runs as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `hookbox relate`.
pub fn run_relate(root: &StateRoot, args: RelateArgs) -> anyhow::Result<ExitStatus> {
    let runner = units::runner(root)?;
    let report = relations::relate(
        &runner,
        &args.a,
        &args.b,
        args.parallel
            .unwrap_or_else(hookbox::runner::lifecycle::default_parallel),
        &units::print_wait,
    )?;
    finish(&report, "related", args.json)
}

/// Runs `hookbox unrelate`.
pub fn run_unrelate(root: &StateRoot, args: UnrelateArgs) -> anyhow::Result<ExitStatus> {
    let runner = units::runner(root)?;
    let target = match &args.b {
        Some(b) => UnrelateTarget::Between(args.a.parse()?, b.clone()),
        None => {
            let number = args.a.rsplit(':').next().unwrap_or_default();
            let id = number.parse().map_err(|_| {
                anyhow::Error::new(relations::RelationError::InvalidEndpoint {
                    given: args.a.clone(),
                    reason: "give two sides (APP[:ENDPOINT] APP[:ENDPOINT]) or a relation id",
                })
            })?;
            UnrelateTarget::Id(id)
        }
    };
    let report = relations::unrelate(
        &runner,
        &target,
        args.parallel
            .unwrap_or_else(hookbox::runner::lifecycle::default_parallel),
        &units::print_wait,
    )?;
    finish(&report, "removed relation", args.json)
}

fn finish(report: &RelateReport, verb: &str, json: bool) -> anyhow::Result<ExitStatus> {
    if json {
        print_json(report)?;
        return Ok(report
            .units
            .iter()
            .map(units::unit_status)
            .fold(ExitStatus::Success, units::worst));
    }
    let relation = &report.relation;
    println!(
        "{verb} {} {} (id {}, interface {})",
        relation.endpoints[0], relation.endpoints[1], relation.id, relation.interface
    );
    Ok(units::print_unit_reports(&report.units))
}
