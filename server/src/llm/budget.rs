//! Per-run budgets for tokens and cost, and usage accounting per agent.
//!
//! Budgets fail closed: before a request is sent, its worst case (the prompt's estimated tokens
//! plus the reply's `max_tokens`) is reserved; a request whose worst case would pass a limit is
//! not sent. When the reply arrives the reservation is replaced by what was really used (or, if
//! the provider reports nothing, by an estimate). A request that fails without a reply releases
//! its reservation.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;

use super::{AgentRole, Usage};

/// Limits for one run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetLimits {
    /// Most tokens, input plus output, all agents together.
    pub max_tokens: u64,
    /// Most US dollars.
    pub max_cost_usd: f64,
}

impl From<&super::settings::BudgetSettings> for BudgetLimits {
    fn from(settings: &super::settings::BudgetSettings) -> Self {
        Self {
            max_tokens: settings.max_tokens,
            max_cost_usd: settings.max_cost_usd,
        }
    }
}

/// What one agent used in a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct AgentUsage {
    /// Requests that got a reply (or were cancelled mid-reply).
    pub requests: u32,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
    /// US dollars.
    pub cost_usd: f64,
}

/// A request the budget does not allow. The message says which limit, by how much, and what
/// to change.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct BudgetExceeded {
    /// Which limit: `tokens` or `cost`.
    pub limit: &'static str,
    /// The message for the user.
    pub message: String,
}

#[derive(Debug, Default)]
struct Ledger {
    reserved_tokens: u64,
    reserved_cost: f64,
    by_agent: BTreeMap<AgentRole, AgentUsage>,
}

impl Ledger {
    fn used(&self) -> (u64, f64) {
        self.by_agent.values().fold((0, 0.0), |(t, c), u| {
            (t + u.input_tokens + u.output_tokens, c + u.cost_usd)
        })
    }
}

/// One run's budget and usage ledger. Cheap to clone; clones share the ledger.
#[derive(Debug, Clone)]
pub struct RunBudget {
    limits: BudgetLimits,
    ledger: Arc<Mutex<Ledger>>,
}

/// The worst case of one request in flight, held until the request settles. Dropping it
/// unsettled (an error, a cancellation before any reply) releases it.
#[derive(Debug)]
pub struct Reservation {
    ledger: Arc<Mutex<Ledger>>,
    tokens: u64,
    cost: f64,
    settled: bool,
}

fn lock(ledger: &Mutex<Ledger>) -> MutexGuard<'_, Ledger> {
    // A panic while holding this lock cannot leave the ledger inconsistent (every update is a
    // few additions), so a poisoned lock is still usable.
    ledger
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl RunBudget {
    /// A budget with these limits and nothing used.
    pub fn new(limits: BudgetLimits) -> Self {
        Self {
            limits,
            ledger: Arc::default(),
        }
    }

    /// The limits.
    pub fn limits(&self) -> BudgetLimits {
        self.limits
    }

    /// Reserves a request's worst case for `agent`, or says which limit it would pass.
    pub fn reserve(
        &self,
        agent: AgentRole,
        tokens: u64,
        cost_usd: f64,
    ) -> Result<Reservation, BudgetExceeded> {
        let mut ledger = lock(&self.ledger);
        let (used_tokens, used_cost) = ledger.used();
        let committed_tokens = used_tokens + ledger.reserved_tokens;
        if committed_tokens + tokens > self.limits.max_tokens {
            return Err(BudgetExceeded {
                limit: "tokens",
                message: format!(
                    "the run's token budget would be exceeded: {committed_tokens} of {} tokens are used or reserved and the next {agent} request may need {tokens}; the run stops here (raise `model.budget.max_tokens` or narrow the goal)",
                    self.limits.max_tokens
                ),
            });
        }
        let committed_cost = used_cost + ledger.reserved_cost;
        if committed_cost + cost_usd > self.limits.max_cost_usd {
            return Err(BudgetExceeded {
                limit: "cost",
                message: format!(
                    "the run's cost budget would be exceeded: ${committed_cost:.4} of ${:.2} is spent or reserved and the next {agent} request may cost ${cost_usd:.4}; the run stops here (raise `model.budget.max_cost_usd` or narrow the goal)",
                    self.limits.max_cost_usd
                ),
            });
        }
        ledger.reserved_tokens += tokens;
        ledger.reserved_cost += cost_usd;
        Ok(Reservation {
            ledger: Arc::clone(&self.ledger),
            tokens,
            cost: cost_usd,
            settled: false,
        })
    }

    /// Replaces a reservation by what the request really used.
    pub fn settle(&self, mut reservation: Reservation, agent: AgentRole, usage: Usage, cost: f64) {
        let mut ledger = lock(&self.ledger);
        ledger.reserved_tokens = ledger.reserved_tokens.saturating_sub(reservation.tokens);
        ledger.reserved_cost = (ledger.reserved_cost - reservation.cost).max(0.0);
        reservation.settled = true;
        let entry = ledger.by_agent.entry(agent).or_default();
        entry.requests += 1;
        entry.input_tokens += usage.input_tokens;
        entry.output_tokens += usage.output_tokens;
        entry.cost_usd += cost;
    }

    /// Usage per agent so far.
    pub fn usage_by_agent(&self) -> BTreeMap<AgentRole, AgentUsage> {
        lock(&self.ledger).by_agent.clone()
    }

    /// Usage of all agents together.
    pub fn total(&self) -> AgentUsage {
        lock(&self.ledger)
            .by_agent
            .values()
            .fold(AgentUsage::default(), |mut sum, u| {
                sum.requests += u.requests;
                sum.input_tokens += u.input_tokens;
                sum.output_tokens += u.output_tokens;
                sum.cost_usd += u.cost_usd;
                sum
            })
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.settled {
            let mut ledger = lock(&self.ledger);
            ledger.reserved_tokens = ledger.reserved_tokens.saturating_sub(self.tokens);
            ledger.reserved_cost = (ledger.reserved_cost - self.cost).max(0.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(tokens: u64, cost: f64) -> RunBudget {
        RunBudget::new(BudgetLimits {
            max_tokens: tokens,
            max_cost_usd: cost,
        })
    }

    #[test]
    fn a_request_that_would_pass_the_token_limit_is_refused() {
        let b = budget(1_000, 10.0);
        let r = b.reserve(AgentRole::Planner, 600, 0.0).expect("fits");
        b.settle(
            r,
            AgentRole::Planner,
            Usage {
                input_tokens: 500,
                output_tokens: 100,
            },
            0.0,
        );
        let err = b.reserve(AgentRole::Coder, 401, 0.0).expect_err("over");
        assert_eq!(err.limit, "tokens");
        assert!(err.message.contains("600 of 1000"), "{err}");
        assert!(err.message.contains("coder"), "{err}");
        b.reserve(AgentRole::Coder, 400, 0.0).expect("exactly fits");
    }

    #[test]
    fn reservations_in_flight_count_against_the_limit_until_dropped() {
        let b = budget(1_000, 10.0);
        let held = b.reserve(AgentRole::Coder, 800, 0.0).expect("fits");
        assert!(b.reserve(AgentRole::Security, 300, 0.0).is_err());
        drop(held);
        assert!(b.reserve(AgentRole::Security, 300, 0.0).is_ok());
        assert_eq!(b.total().requests, 0, "a released reservation is not usage");
    }

    #[test]
    fn cost_limit_fails_closed_and_usage_is_kept_per_agent() {
        let b = budget(1_000_000, 0.05);
        let r = b.reserve(AgentRole::Coder, 10, 0.04).expect("fits");
        b.settle(r, AgentRole::Coder, Usage::default(), 0.04);
        let err = b.reserve(AgentRole::Tester, 10, 0.02).expect_err("over");
        assert_eq!(err.limit, "cost");
        let by_agent = b.usage_by_agent();
        assert_eq!(by_agent[&AgentRole::Coder].requests, 1);
        assert!(!by_agent.contains_key(&AgentRole::Tester));
    }
}
