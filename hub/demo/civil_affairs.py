"""Civil affairs: social assistance cases and the payments and services delivered under them.

Recurring cases (minimum living guarantee, extreme-poverty support, old-age and disability
allowances) are paid on a fixed day each month; one-off cases (temporary relief, medical
assistance, home care) answer a hotline request or a hospital stay. Every delivery belongs to a
case, and its recipient's name, ID number and mobile are the registry's.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from hub.demo import deliveries, health
from hub.demo.hotline import Request
from hub.demo.money import share, stepped, whole
from hub.demo.population import Person, Population
from hub.demo.timeline import (
    NOW,
    REFERENCE_DATE,
    WINDOW_START,
    add_years,
    age_on,
    months,
    office_time,
    random_day,
)

DEPARTMENT = "civil_affairs"

DIBAO, TEKUN, TEMPORARY, MEDICAL = "低保", "特困", "临时救助", "医疗救助"
AGED, DISABILITY, HOME_CARE = "高龄津贴", "残疾人两项补贴", "居家养老服务补贴"

SERVICE = {
    DIBAO: "低保金发放",
    TEKUN: "特困供养金发放",
    TEMPORARY: "临时救助金发放",
    MEDICAL: "医疗救助金发放",
    AGED: "高龄津贴发放",
    DISABILITY: "残疾人两项补贴发放",
    HOME_CARE: "居家养老服务",
}
# The day of the month the bank pays each recurring allowance.
PAYDAY = {DIBAO: 10, TEKUN: 10, AGED: 15, DISABILITY: 15}

ACTIVE, ENDED, PENDING, SETTLED = "正常", "已终止", "审核中", "已结案"

# The monthly minimum living standard per person (yuan), the same in city and countryside.
DIBAO_STANDARD = 1315


@dataclass
class CivilAffairs:
    cases: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    # Households on the minimum living guarantee or extreme-poverty support: (start, end or None).
    low_income: dict[str, list[tuple[date, date | None]]] = field(default_factory=dict)

    def rows(self) -> dict[str, list[dict[str, Any]]]:
        return {"ca_assistance_case": self.cases, "ca_service_delivery": self.deliveries}


def build(rng: random.Random, population: Population, visits: health.Visits, requests: list[Request]) -> CivilAffairs:
    book = _Casebook(rng)
    for household in population.households:
        head = household.head
        if head.age >= 65 and len(household.members) == 1 and rng.random() < 0.1:
            # Support is at least 1.3 times the living standard, plus care for the very old.
            care = 0 if head.age < 80 else 300 if head.age < 90 else 600
            book.recurring(head, TEKUN, whole(round(DIBAO_STANDARD * 1.3) + care), _since(rng))
        elif rng.random() < (0.05 if household.district.rural else 0.018):
            # The guarantee tops the household's income per head up to the standard.
            income = rng.randrange(0, 900, 10)
            amount = whole(max(200, len(household.members) * (DIBAO_STANDARD - income)))
            start = _since(rng) if rng.random() < 0.8 else random_day(rng, WINDOW_START, date(2026, 5, 31))
            book.recurring(head, DIBAO, amount, start, ends=rng.random() < 0.12)
    for person in population.persons:
        eightieth = add_years(person.birth_date, 80)
        if eightieth <= REFERENCE_DATE and rng.random() < 0.95:
            start = max(date(2012, 1, 1), eightieth + timedelta(days=rng.randint(15, 60)))
            if start <= REFERENCE_DATE:
                book.recurring(person, AGED, whole(200 if person.age >= 90 else 100), start)
        if rng.random() < 0.012:
            amount = whole(rng.choice((300, 330, 630, 660)))
            book.recurring(person, DISABILITY, amount, _since(rng))
    for request in requests:
        if request.need.department == DEPARTMENT:
            _serve(rng, book, request)
    for household in population.households:
        if rng.random() < 0.04:  # walk-in applicants, with no hotline request
            day = random_day(rng, WINDOW_START, REFERENCE_DATE)
            book.one_off(household.head, TEMPORARY, stepped(rng, 1000, 6000, 100), office_time(rng, day))
        elder = max(household.members, key=lambda m: m.age)
        if elder.age >= 70 and rng.random() < 0.03:
            day = random_day(rng, WINDOW_START, REFERENCE_DATE)
            book.one_off(elder, HOME_CARE, stepped(rng, 300, 1200, 50), office_time(rng, day))
    _medical(rng, book, population, visits)
    deliveries.number(book.result.deliveries, "CASD")
    return book.result


def _since(rng: random.Random) -> date:
    """When a long-running case began, before the window."""
    return random_day(rng, date(2016, 1, 1), date(2024, 12, 31))


def _serve(rng: random.Random, book: _Casebook, request: Request) -> None:
    key, caller = request.need.key, request.caller
    at = request.received_at + timedelta(days=rng.randint(2, 13), hours=rng.randint(-3, 3))
    if rng.random() < 0.1:
        at += timedelta(days=rng.randint(4, 12))  # answered, but after the deadline
    at = datetime.combine(at.date(), time(rng.randint(9, 16), rng.randrange(60), rng.randrange(60)))
    if key == "temp_relief" and rng.random() < 0.6 and at <= NOW:
        book.one_off(caller, TEMPORARY, stepped(rng, 1000, 8000, 100), at, request.request_id)
    elif key == "dibao_apply" and rng.random() < 0.4 and not book.is_low_income(caller, at.date()):
        # Approval after the reference date leaves the case pending review, with nothing paid.
        household = caller.household
        amount = whole(max(200, len(household.members) * (DIBAO_STANDARD - rng.randrange(0, 900, 10))))
        book.recurring(caller, DIBAO, amount, at.date(), request_id=request.request_id, first=at)
    elif key == "elderly_care" and rng.random() < 0.5 and at <= NOW:
        elder = max(caller.household.members, key=lambda m: m.age)
        if elder.age >= 60:
            book.one_off(elder, HOME_CARE, stepped(rng, 300, 1200, 50), at, request.request_id)


def _medical(rng: random.Random, book: _Casebook, population: Population, visits: health.Visits) -> None:
    """Poor patients get most of what insurance left them to pay after a hospital stay."""
    for person in population.persons:
        for stay in visits.stays.get(person.id_number, ()):
            discharged = stay["discharge_date"]
            if discharged is None or not book.is_low_income(person, discharged):
                continue
            at = office_time(rng, discharged + timedelta(days=rng.randint(15, 40)))
            if at <= NOW:
                amount = min(share(health.out_of_pocket(stay), 0.7), whole(50_000))
                book.one_off(person, MEDICAL, amount, at)


class _Casebook:
    """Opens cases and pays what they are owed, month by month or once."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self.result = CivilAffairs()

    def is_low_income(self, person: Person, day: date) -> bool:
        spans = self.result.low_income.get(person.household.household_id, ())
        return any(start <= day and (end is None or day <= end) for start, end in spans)

    def recurring(
        self,
        person: Person,
        kind: str,
        amount: Decimal,
        start: date,
        *,
        ends: bool = False,
        request_id: str | None = None,
        first: datetime | None = None,
    ) -> None:
        rng = self._rng
        end = None
        if ends:
            earliest = max(start, WINDOW_START) + timedelta(days=60)
            end = random_day(rng, earliest, REFERENCE_DATE) if earliest <= REFERENCE_DATE else None
        waiting = start > REFERENCE_DATE or (first is not None and first > NOW)
        status = PENDING if waiting else ACTIVE if end is None else ENDED
        case_id = self._open(person, kind, status, amount, start, end, request_id)
        if status == PENDING:
            return
        if kind in (DIBAO, TEKUN):
            self.result.low_income.setdefault(person.household.household_id, []).append((start, end))
        # An approval made through a request pays the first month at once, the rest on payday.
        if first is not None:
            self._pay(person, kind, amount, case_id, first, request_id)
        last = min(end or REFERENCE_DATE, REFERENCE_DATE)
        for year, month in months(max(start, WINDOW_START), last):
            payday = date(year, month, PAYDAY[kind])
            if start <= payday <= last and (first is None or payday > first.date()):
                paid = amount
                if kind == AGED:  # the allowance doubles from the month the person turns 90
                    paid = whole(200 if age_on(person.birth_date, payday) >= 90 else 100)
                self._pay(person, kind, paid, case_id, office_time(rng, payday, 9, 12), None)

    def one_off(self, person: Person, kind: str, amount: Decimal, at: datetime, request_id: str | None = None) -> None:
        case_id = self._open(person, kind, SETTLED, None, at.date(), at.date(), request_id)
        self._pay(person, kind, amount, case_id, at, request_id)

    def _open(
        self,
        person: Person,
        kind: str,
        status: str,
        amount: Decimal | None,
        start: date,
        end: date | None,
        request_id: str | None,
    ) -> str:
        case_id = f"CA{len(self.result.cases) + 1:07d}"
        self.result.cases.append(
            {
                "case_id": case_id,
                "recipient_id_number": person.id_number,
                "recipient_name": person.name,
                "assistance_type": kind,
                "status": status,
                "monthly_amount": amount,
                "start_date": start,
                "end_date": end,
                "district_code": person.district.code,
                "household_size": len(person.household.members),
                "request_id": request_id,
            }
        )
        return case_id

    def _pay(
        self, person: Person, kind: str, amount: Decimal, case_id: str, at: datetime, request_id: str | None
    ) -> None:
        self.result.deliveries.append(
            {
                "delivery_id": "",
                "case_id": case_id,
                "recipient_name": person.name,
                "recipient_id_number": person.id_number,
                "recipient_mobile": person.mobile,
                "service_type": SERVICE[kind],
                "delivered_at": at,
                "amount": amount,
                "district_code": person.district.code,
                "status": deliveries.status(self._rng),
                "request_id": request_id,
                "expenditure_id": None,
            }
        )
