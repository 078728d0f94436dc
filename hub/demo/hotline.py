"""The 12345 citizen service hotline: requests (demand) and satisfaction feedback.

Requests are made first, each with the need behind it. Departments then answer some of them
with service deliveries; `finish` turns what came of each request into its status, closing
time and the caller's feedback. Some demand stays unanswered, as auditors expect to find.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import accumulate
from typing import Any

from hub.demo.deliveries import reference
from hub.demo.needs import NEEDS, SERVED, Need
from hub.demo.population import Person, Population
from hub.demo.timeline import NOW, REFERENCE_DATE, WINDOW_START, random_day

REQUESTS = 6_000

ACCEPTED, IN_PROGRESS, CLOSED, OVERDUE = "受理", "办理中", "已办结", "超期"

CHANNELS = ("电话", "浙里办APP", "微信公众号", "网站", "市长信箱", "短信")
_CHANNEL_WEIGHTS = (55, 15, 12, 10, 5, 3)
# Calls by hour of day: the line is open around the clock but busiest in office hours.
_HOUR_CUM = tuple(accumulate((1, 1, 1, 1, 1, 1, 2, 5, 9, 10, 10, 8, 5, 7, 9, 9, 8, 7, 5, 5, 4, 3, 2, 1)))
_RELATIVES = ("父亲", "母亲", "丈夫", "妻子", "孩子", "老伴")
_NEED_CUM = tuple(accumulate(n.weight for n in NEEDS))

_COMMENTS = {
    5: ("问题解决得很及时，非常满意。", "工作人员耐心细致，感谢帮助。"),
    4: ("基本解决了问题，希望流程再简化一些。", "处理结果满意，就是等待时间稍长。"),
    3: ("有答复，但问题没有完全解决。", "答复了政策，后续还需要继续跟进。"),
    2: ("答复内容比较笼统，没有解决实际问题。", "多次来电才有人处理，效率不高。"),
    1: ("问题至今没有解决，不满意。", "工作人员推诿，答复与实际情况不符。"),
}
_PAID_COMMENT = "相关款项已经收到，感谢政府的帮助。"


@dataclass(slots=True)
class Request:
    request_id: str
    need: Need
    caller: Person
    received_at: datetime
    deadline: datetime
    channel: str
    content: str
    # (global reference, delivered at) of each service delivery that answered the request.
    answers: list[tuple[str, datetime]] = field(default_factory=list)


def take_requests(
    rng: random.Random, population: Population, schools: Mapping[str, str], count: int = REQUESTS
) -> list[Request]:
    """`count` requests over the window; `schools` maps a household to a school one of its
    children attends, for the callers asking about student aid."""
    adults = [p for p in population.persons if p.age >= 18 and p.mobile]
    elders = {h.household_id for h in population.households if any(m.age >= 60 for m in h.members)}
    pools = {
        "adults": adults,
        "working_age": [p for p in adults if p.age < 60],
        "with_student": [p for p in adults if p.household.household_id in schools],
        "with_elder": [p for p in adults if p.household.household_id in elders],
    }
    drafts = []
    for _ in range(count):
        need = rng.choices(NEEDS, cum_weights=_NEED_CUM)[0]
        caller = rng.choice(pools[need.pool])
        day = random_day(rng, WINDOW_START, REFERENCE_DATE)
        hour = rng.choices(range(24), cum_weights=_HOUR_CUM)[0]
        received = datetime(day.year, day.month, day.day, hour, rng.randrange(60), rng.randrange(60))
        if received > NOW:
            received -= timedelta(hours=12)
        content = rng.choice(need.templates).format(
            place=caller.household.town,
            relative=rng.choice(_RELATIVES),
            school=schools.get(caller.household.household_id, ""),
            hospital=f"{caller.district.name}人民医院",
            age=caller.age,
        )
        channel = rng.choices(CHANNELS, _CHANNEL_WEIGHTS)[0]
        drafts.append((received, caller.id_number, need, caller, channel, content))
    drafts.sort(key=lambda d: (d[0], d[1]))
    requests: list[Request] = []
    per_day: dict[str, int] = {}
    for received, _, need, caller, channel, content in drafts:
        day_code = f"{received:%Y%m%d}"
        per_day[day_code] = per_day.get(day_code, 0) + 1
        request_id = f"HL{day_code}{per_day[day_code]:04d}"
        deadline = received + timedelta(days=need.days)
        requests.append(Request(request_id, need, caller, received, deadline, channel, content))
    return requests


def answer(requests: Mapping[str, Request], department: str, deliveries: Iterable[dict[str, Any]]) -> None:
    """Record on each request the deliveries that answered it."""
    for row in deliveries:
        if row["request_id"] is not None:
            ref = reference(department, row["delivery_id"])
            requests[row["request_id"]].answers.append((ref, row["delivered_at"]))


def finish(rng: random.Random, requests: list[Request]) -> dict[str, list[dict[str, Any]]]:
    """Each request's outcome as of the reference date, and the feedback of satisfied or
    dissatisfied callers."""
    rows: list[dict[str, Any]] = []
    feedback: list[dict[str, Any]] = []
    for request in requests:
        status, closed = _outcome(rng, request)
        satisfaction = None
        if status == CLOSED and closed is not None and rng.random() < 0.75:
            submitted = closed + timedelta(seconds=rng.randrange(3600, 3 * 86400))
            if submitted <= NOW:
                satisfaction = _score(rng, bool(request.answers), _poorly_served(request))
                feedback.append(_feedback(rng, request, satisfaction, submitted))
        rows.append(
            {
                "request_id": request.request_id,
                "caller_id_number": request.caller.id_number,
                "caller_name": request.caller.name,
                "caller_mobile": request.caller.mobile,
                "received_at": request.received_at,
                "channel": request.channel,
                "category": request.need.category,
                "content": request.content,
                "district_code": request.caller.district.code,
                "assigned_department": request.need.department,
                "deadline": request.deadline,
                "status": status,
                "closed_at": closed,
                "satisfaction": satisfaction,
            }
        )
    feedback.sort(key=lambda f: (f["submitted_at"], f["request_id"]))
    for number, row in enumerate(feedback, 1):
        row["feedback_id"] = f"FB{number:07d}"
    return {"hl_request": rows, "hl_feedback": feedback}


def _outcome(rng: random.Random, request: Request) -> tuple[str, datetime | None]:
    received, deadline = request.received_at, request.deadline
    if request.answers:
        closed = max(at for _, at in request.answers) + timedelta(seconds=rng.randrange(2 * 3600, 2 * 86400))
        return (CLOSED, closed) if closed <= NOW else (IN_PROGRESS, None)
    if NOW - received < timedelta(days=1):
        return ACCEPTED, None
    # Needs a department can answer with a service but did not: some are left lying overdue.
    if rng.random() < (0.18 if request.need.key in SERVED else 0.06):
        return (OVERDUE if deadline < NOW else IN_PROGRESS), None
    span = (deadline - received).total_seconds()
    closed = received + timedelta(seconds=int(rng.uniform(0.1, 1.1) * span))
    if closed <= NOW:
        return CLOSED, closed
    return (OVERDUE if deadline < NOW else IN_PROGRESS), None


# Home care in one district is run badly: its callers rate it low, the LOW_SATISFACTION gap the
# accountability reports must find (docs/lineage.md, "Reports"). One draw per score whatever the
# weights, so no other value of the data changes with it.
POORLY_SERVED = ("elderly_care", "330127")


def _poorly_served(request: Request) -> bool:
    return bool(request.answers) and (request.need.key, request.caller.district.code) == POORLY_SERVED


def _score(rng: random.Random, served: bool, poorly: bool = False) -> int:
    if poorly:
        weights: tuple[int, ...] = (30, 30, 20, 15, 5)
    else:
        weights = (2, 3, 10, 25, 60) if served else (10, 15, 25, 25, 25)
    return rng.choices((1, 2, 3, 4, 5), weights)[0]


def _feedback(rng: random.Random, request: Request, satisfaction: int, submitted: datetime) -> dict[str, Any]:
    delivery_ref = request.answers[0][0] if request.answers else None
    comment = _PAID_COMMENT if delivery_ref and satisfaction == 5 and rng.random() < 0.5 else None
    return {
        "feedback_id": "",
        "request_id": request.request_id,
        "delivery_ref": delivery_ref,
        "satisfaction": satisfaction,
        "comment": comment or rng.choice(_COMMENTS[satisfaction]),
        "submitted_at": submitted,
    }
