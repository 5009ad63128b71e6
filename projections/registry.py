"""Every read model the ledger keeps, in the order a batch of events is applied to them."""

from __future__ import annotations

from projections.disputes import Disputes
from projections.follow_ups import FollowUps
from projections.holdings import Holdings
from projections.model import ReadModel
from projections.ownership_intervals import OwnershipIntervals
from projections.people import People
from projections.pool_leads import PoolLeads
from projections.pools import Pools


def all_models() -> list[ReadModel]:
    return [People(), Pools(), PoolLeads(), Holdings(), OwnershipIntervals(), FollowUps(), Disputes()]
