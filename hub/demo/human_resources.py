"""Human resources and social security: pension accounts, employment histories and the
employment services paid to job seekers and the self-employed.

Working-age residents are employed, self-employed, unemployed or out of the labour force;
retirees draw a pension. Unemployment benefit, training and start-up subsidies go to the people
whose histories make them eligible, and some answer hotline requests.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from hub.demo import deliveries
from hub.demo.hotline import Request
from hub.demo.identities import MALE
from hub.demo.money import share, stepped, whole, yuan
from hub.demo.population import Person, Population
from hub.demo.timeline import (
    NOW,
    REFERENCE_DATE,
    WINDOW_START,
    add_years,
    month_after,
    months,
    office_time,
    random_day,
)

DEPARTMENT = "human_resources"

EMPLOYEE_SCHEME, RESIDENT_SCHEME = "城镇职工基本养老保险", "城乡居民基本养老保险"
CONTRIBUTING, SUSPENDED, RECEIVING = "参保缴费", "暂停缴费", "领取待遇"
UNEMPLOYMENT, TRAINING, STARTUP, FLEXIBLE = (
    "失业保险金",
    "职业技能培训补贴",
    "一次性创业补贴",
    "灵活就业社保补贴",
)

# Zhejiang's 2025 bounds of the monthly contribution base (60% and 300% of the average wage).
BASE_FLOOR, BASE_CEILING = 4462, 22311
# Unemployment benefit: 90% of Hangzhou's minimum wage of 2,490 yuan.
UNEMPLOYMENT_BENEFIT = 2241

SECTORS: dict[str, tuple[int, tuple[str, ...]]] = {
    "制造业": (30, ("机械制造", "电子科技", "纺织", "五金制品", "包装材料", "汽车零部件")),
    "信息传输、软件和信息技术服务业": (12, ("网络科技", "软件技术", "数据科技", "信息技术")),
    "批发和零售业": (14, ("商贸", "百货", "贸易", "超市")),
    "建筑业": (10, ("建设工程", "建筑安装", "装饰工程")),
    "住宿和餐饮业": (8, ("餐饮管理", "酒店管理")),
    "交通运输、仓储和邮政业": (7, ("物流", "运输", "快递服务")),
    "租赁和商务服务业": (8, ("企业管理咨询", "人力资源服务", "物业管理")),
    "教育": (3, ("教育科技",)),
    "卫生和社会工作": (3, ("医疗器械", "健康管理")),
    "农、林、牧、渔业": (5, ("农业开发", "茶叶")),
}
_BRANDS = tuple(
    [
        "恒达",
        "华瑞",
        "新越",
        "东方",
        "钱江",
        "西子",
        "德力",
        "博远",
        "中盛",
        "嘉禾",
        "明远",
        "天成",
        "同创",
        "鼎盛",
        "瑞丰",
        "汇通",
        "安信",
        "浙联",
        "宏泰",
        "长运",
        "云栖",
        "之江",
        "富春",
        "新安",
        "千岛",
        "兴业",
        "华辰",
    ]
)
_TRADES = (
    ("小吃店", "住宿和餐饮业"),
    ("水果店", "批发和零售业"),
    ("便利店", "批发和零售业"),
    ("理发店", "居民服务业"),
    ("五金店", "批发和零售业"),
    ("装修工作室", "建筑业"),
)


@dataclass
class HumanResources:
    accounts: list[dict[str, Any]] = field(default_factory=list)
    employment: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)

    def rows(self) -> dict[str, list[dict[str, Any]]]:
        return {
            "hr_pension_account": self.accounts,
            "hr_employment": self.employment,
            "hr_service_delivery": self.deliveries,
        }


def employers(rng: random.Random) -> list[tuple[str, str]]:
    """A pool of (employer, sector), most of them companies in the city."""
    names: dict[str, str] = {}
    sectors = list(SECTORS)
    weights = [SECTORS[s][0] for s in sectors]
    while len(names) < 240:
        sector = rng.choices(sectors, weights)[0]
        kind = "专业合作社" if sector.startswith("农") else "有限公司"
        names.setdefault(f"杭州{rng.choice(_BRANDS)}{rng.choice(SECTORS[sector][1])}{kind}", sector)
    return list(names.items())


def build(rng: random.Random, population: Population, students: set[str], requests: list[Request]) -> HumanResources:
    result = HumanResources()
    pool = employers(rng)
    for person in population.persons:
        age = person.age
        if age < 18 or person.id_number in students:
            continue
        retired = age >= (60 if person.gender == MALE else 55)
        role = (
            "retired"
            if retired
            else rng.choices(("employed", "self_employed", "unemployed", "inactive"), (80, 7, 6, 7))[0]
        )
        _History(rng, result, person, role, pool).record()
    for request in requests:
        if request.need.key in ("job_training", "startup") and rng.random() < 0.45:
            at = office_time(rng, (request.received_at + timedelta(days=rng.randint(3, 13))).date())
            if at <= NOW:
                kind = TRAINING if request.need.key == "job_training" else STARTUP
                amount = stepped(rng, 800, 3000, 100) if kind == TRAINING else whole(5000)
                _pay(rng, result, request.caller, kind, amount, at, request.request_id)
    result.employment.sort(key=lambda r: (r["start_date"], r["id_number"]))
    for number, row in enumerate(result.employment, 1):
        row["record_id"] = f"EM{number:07d}"
    deliveries.number(result.deliveries, "HRSD")
    return result


class _History:
    """One person's working life: jobs, a pension account, and what they were paid for."""

    def __init__(
        self,
        rng: random.Random,
        result: HumanResources,
        person: Person,
        role: str,
        pool: list[tuple[str, str]],
    ) -> None:
        self.rng, self.result, self.person, self.role, self.pool = rng, result, person, role, pool

    def record(self) -> None:
        rng, person, role = self.rng, self.person, self.role
        rural = person.district.rural
        if role == "inactive":
            scheme = RESIDENT_SCHEME if rng.random() < 0.6 else None
        elif role == "retired":
            scheme = EMPLOYEE_SCHEME if rng.random() < (0.35 if rural else 0.75) else RESIDENT_SCHEME
        elif role == "employed":
            scheme = EMPLOYEE_SCHEME if rng.random() < 0.92 else RESIDENT_SCHEME
        else:
            scheme = EMPLOYEE_SCHEME if rng.random() < 0.6 else RESIDENT_SCHEME
        career = add_years(person.birth_date, rng.randint(18, 24)) + timedelta(days=rng.randrange(365))
        last_end = (
            self._jobs(career) if role != "inactive" and (scheme == EMPLOYEE_SCHEME or role != "retired") else None
        )
        if scheme is not None and rng.random() < 0.96:
            self._account(scheme, career)
        if role == "unemployed" and scheme == EMPLOYEE_SCHEME and last_end is not None:
            self._unemployment(career, last_end)
        if role in ("unemployed", "self_employed") and scheme == EMPLOYEE_SCHEME:
            self._flexible_subsidy()

    def _flexible_subsidy(self) -> None:
        """Women from 40 and men from 50 count as hard to employ: half of them get a quarterly
        subsidy towards the contributions they pay on their own."""
        rng, person = self.rng, self.person
        if person.age < (50 if person.gender == MALE else 40) or rng.random() >= 0.5:
            return
        for year, month in months(WINDOW_START, REFERENCE_DATE):
            at = office_time(rng, date(year, month, 25))
            if month % 3 == 0 and at <= NOW:
                _pay(rng, self.result, person, FLEXIBLE, whole(1890), at, None)

    def _jobs(self, career: date) -> date | None:
        """Employment records from `career` on; the end of the last one."""
        rng, person, role = self.rng, self.person, self.role
        if role == "retired":
            last_end: date | None = add_years(person.birth_date, 60 if person.gender == MALE else 55)
        elif role == "unemployed":
            last_end = random_day(rng, REFERENCE_DATE - timedelta(days=480), REFERENCE_DATE - timedelta(days=20))
        else:
            last_end = None
        finish = last_end or REFERENCE_DATE
        if finish <= career:
            return None
        years = (finish - career).days / 365
        count = 1 if role == "retired" else 1 + (years > 6) + (years > 15 and rng.random() < 0.5)
        if role == "self_employed":
            count += 1
        cuts = sorted(career + timedelta(days=rng.randrange(1, (finish - career).days)) for _ in range(count - 1))
        starts = [career, *cuts]
        for index, start in enumerate(starts):
            last = index == len(starts) - 1
            end = last_end if last else starts[index + 1] - timedelta(days=rng.randint(1, 60))
            if last and role == "self_employed":
                trade, sector = rng.choice(_TRADES)
                employer = f"{person.district.short}{person.name[0]}记{trade}"
                if start >= WINDOW_START - timedelta(days=150):
                    at = office_time(rng, start + timedelta(days=rng.randint(60, 150)))
                    if at.date() >= WINDOW_START and at <= NOW:
                        _pay(rng, self.result, person, STARTUP, whole(5000), at, None)
            else:
                employer, sector = rng.choice(self.pool)
            self.result.employment.append(
                {
                    "record_id": "",
                    "id_number": person.id_number,
                    "employer": employer,
                    "sector": sector,
                    "start_date": start,
                    "end_date": end,
                }
            )
        return last_end

    def _account(self, scheme: str, career: date) -> None:
        rng, person = self.rng, self.person
        base: Decimal | None = None
        pension: Decimal | None = None
        if scheme == EMPLOYEE_SCHEME:
            since = max(career, date(1993, 1, 1))
            wage = rng.lognormvariate(math.log(8500), 0.45)
            base = whole(round(min(BASE_CEILING, max(BASE_FLOOR, wage))))
            if self.role == "retired":
                pension = share(base, rng.uniform(0.42, 0.62))
                pension = max(pension, whole(1900))
        else:
            earliest = max(add_years(person.birth_date, 16), date(2009, 10, 1))
            since = random_day(rng, earliest, max(earliest, date(2016, 12, 31)))
            if person.age >= 60:
                pension = yuan(rng.randint(30_000, 90_000))
        status = (
            RECEIVING
            if pension is not None
            else SUSPENDED
            if self.role in ("unemployed", "inactive") or rng.random() < 0.04
            else CONTRIBUTING
        )
        self.result.accounts.append(
            {
                "id_number": person.id_number,
                "account_no": f"3301{len(self.result.accounts) + 1:08d}",
                "scheme": scheme,
                "insured_since": since,
                "contribution_base": base,
                "monthly_pension": pension,
                "status": status,
            }
        )

    def _unemployment(self, career: date, job_ended: date) -> None:
        """Benefit from the month after the job ended: 12, 18 or 24 months by years insured."""
        rng, person = self.rng, self.person
        insured_years = (job_ended - max(career, date(1993, 1, 1))).days / 365
        if insured_years < 1:
            return
        duration = 12 if insured_years < 5 else 18 if insured_years < 10 else 24
        first = month_after(job_ended)
        for year, month in months(first, month_after(first, duration - 1)):
            payday = date(year, month, 20)
            at = office_time(rng, payday, 9, 12)
            if payday >= WINDOW_START and at <= NOW:
                _pay(rng, self.result, person, UNEMPLOYMENT, whole(UNEMPLOYMENT_BENEFIT), at, None)
        if rng.random() < 0.3:
            day = job_ended + timedelta(days=rng.randint(30, 200))
            at = office_time(rng, day)
            if day >= WINDOW_START and at <= NOW:
                _pay(rng, self.result, person, TRAINING, stepped(rng, 800, 3000, 100), at, None)


def _pay(
    rng: random.Random,
    result: HumanResources,
    person: Person,
    kind: str,
    amount: Decimal,
    at: datetime,
    request_id: str | None,
) -> None:
    result.deliveries.append(
        {
            "delivery_id": "",
            "id_number": person.id_number,
            "recipient_name": person.name,
            "service_type": kind,
            "delivered_at": at,
            "amount": amount,
            "district_code": person.district.code,
            "status": deliveries.status(rng),
            "request_id": request_id,
            "expenditure_id": None,
        }
    )
