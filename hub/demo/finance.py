"""Finance: budget lines and the expenditures paid from them.

Every service delivery is funded by an expenditure: finance pays each department's special
account once per month, district and service (a recurring allowance on its payday, one-off
relief in advance for the month), and the expenditure's amount is exactly the sum of the
deliveries it funds. Some programmes pay contractors and build things instead, and one budget
line per year is never spent: the "money with no demand" auditors look for.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from hub.demo.geography import BY_CODE
from hub.demo.money import whole
from hub.demo.tables import TAGS
from hub.demo.timeline import FISCAL_YEARS, NOW, REFERENCE_DATE, office_time, random_day


@dataclass(frozen=True)
class Program:
    department: str
    name: str
    # The delivery service types it pays for; empty for programmes that pay contractors.
    services: tuple[str, ...] = ()
    # Who receives the money: `{district}` for a district bureau's special account.
    payee: str = ""
    # Yearly spending of a contractor programme, in ten-thousands of yuan.
    scale: tuple[int, int] = (0, 0)
    unspent: bool = False


_CA_ACCOUNT = "{district}民政局社会救助资金专户"
_HR_ACCOUNT = "{district}人力资源和社会保障局就业资金专户"
_EDU_ACCOUNT = "{district}教育局学生资助资金专户"

PROGRAMS = (
    Program("civil_affairs", "城乡最低生活保障资金", ("低保金发放",), _CA_ACCOUNT),
    Program("civil_affairs", "特困人员救助供养资金", ("特困供养金发放",), _CA_ACCOUNT),
    Program("civil_affairs", "临时救助资金", ("临时救助金发放",), _CA_ACCOUNT),
    Program("civil_affairs", "困难群众医疗救助资金", ("医疗救助金发放",), _CA_ACCOUNT),
    Program("civil_affairs", "高龄津贴", ("高龄津贴发放",), _CA_ACCOUNT),
    Program("civil_affairs", "困难残疾人生活补贴和重度残疾人护理补贴", ("残疾人两项补贴发放",), _CA_ACCOUNT),
    Program("civil_affairs", "居家养老服务补贴", ("居家养老服务",), _CA_ACCOUNT),
    Program("civil_affairs", "社区养老服务设施建设", payee="杭州之江建设工程有限公司", scale=(300, 600)),
    Program("civil_affairs", "社会救助信息系统运维", payee="杭州云栖数据科技有限公司", scale=(40, 80)),
    Program("civil_affairs", "困难群众冬季取暖补贴", unspent=True, scale=(100, 150)),
    Program("human_resources", "失业保险金", ("失业保险金",), _HR_ACCOUNT),
    Program("human_resources", "职业技能培训补贴", ("职业技能培训补贴",), _HR_ACCOUNT),
    Program("human_resources", "创业扶持资金", ("一次性创业补贴",), _HR_ACCOUNT),
    Program("human_resources", "灵活就业人员社会保险补贴", ("灵活就业社保补贴",), _HR_ACCOUNT),
    Program("human_resources", "公共就业服务平台建设", payee="杭州汇通信息技术有限公司", scale=(80, 160)),
    Program("human_resources", "人才招引宣传活动", payee="杭州西子文化传播有限公司", scale=(30, 60)),
    Program("education", "学前教育幼儿资助", ("学前教育幼儿资助",), _EDU_ACCOUNT),
    Program("education", "义务教育家庭经济困难学生生活补助", ("义务教育家庭经济困难学生生活补助",), _EDU_ACCOUNT),
    Program(
        "education",
        "普通高中和中职国家助学金",
        ("普通高中国家助学金", "中等职业教育国家助学金"),
        _EDU_ACCOUNT,
    ),
    Program("education", "本专科生国家助学金", ("本专科生国家助学金",), _EDU_ACCOUNT),
    Program("education", "家庭经济困难学生临时补助", ("家庭经济困难学生临时补助",), _EDU_ACCOUNT),
    Program("education", "智慧校园设备采购", payee="杭州博远电子科技有限公司", scale=(200, 400)),
    Program("education", "农村学校教师周转宿舍建设", unspent=True, scale=(300, 500)),
    Program("health", "基本公共卫生服务补助", payee="{district}卫生健康局", scale=(800, 1200)),
    Program("health", "医疗设备购置", payee="杭州明远医疗器械有限公司", scale=(500, 900)),
    Program("hotline", "12345政务服务热线运营服务", payee="杭州安信信息服务有限公司", scale=(600, 800)),
    Program("population", "人口信息系统运维", payee="杭州浙联软件技术有限公司", scale=(50, 90)),
    Program("finance", "预算管理一体化系统运维", payee="杭州同创信息技术有限公司", scale=(60, 120)),
)


def budget(rng: random.Random, deliveries: Mapping[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """Budget lines and expenditures for every fiscal year; fills each delivery's expenditure_id."""
    by_service = {(p.department, s): p for p in PROGRAMS for s in p.services}
    lines: dict[tuple[Program, int], dict[str, Any]] = {}
    numbers: dict[tuple[str, int], int] = {}
    for program in PROGRAMS:
        for year in FISCAL_YEARS:
            index = numbers[(program.department, year)] = numbers.get((program.department, year), 0) + 1
            lines[(program, year)] = {
                "line_id": f"BL{year}-{TAGS[program.department].upper()}-{index:02d}",
                "department": program.department,
                "fiscal_year": year,
                "program": program.name,
                "amount": whole(0),
                "approved_at": date(year - 1, 12, rng.randint(20, 30)),
            }
    # Batches of deliveries, each funded by one expenditure.
    batches: dict[tuple[str, str, str, int, int], list[dict[str, Any]]] = {}
    for department, rows in deliveries.items():
        for row in rows:
            at: datetime = row["delivered_at"]
            key = (department, row["service_type"], row["district_code"], at.year, at.month)
            batches.setdefault(key, []).append(row)
    expenditures: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    for (department, service, district_code, year, month), rows in batches.items():
        program = by_service[(department, service)]
        district = BY_CODE[district_code].name
        first = min(r["delivered_at"] for r in rows)
        expenditure = {
            "expenditure_id": "",
            "budget_line_id": lines[(program, year)]["line_id"],
            "department": department,
            "payee": program.payee.format(district=district),
            "amount": sum((r["amount"] for r in rows), whole(0)),
            # Paid before the day's first delivery leaves the special account.
            "paid_at": datetime.combine(first.date(), time(8, 30)),
            "purpose": f"{year}年{month}月{district}{service}资金拨付",
        }
        expenditures.append((expenditure, rows))
    for program in PROGRAMS:
        if program.services or program.unspent:
            continue
        for year in FISCAL_YEARS:
            expenditures.extend((e, []) for e in _contracts(rng, program, lines[(program, year)]["line_id"], year))
    expenditures.sort(key=lambda e: (e[0]["paid_at"], e[0]["budget_line_id"], e[0]["purpose"]))
    spent: dict[str, Decimal] = {}
    for number, (expenditure, rows) in enumerate(expenditures, 1):
        expenditure["expenditure_id"] = f"EX{number:07d}"
        for row in rows:
            row["expenditure_id"] = expenditure["expenditure_id"]
        line_id = expenditure["budget_line_id"]
        spent[line_id] = spent.get(line_id, whole(0)) + expenditure["amount"]
    for (program, year), line in lines.items():
        line["amount"] = _appropriation(rng, program, year, spent.get(line["line_id"], whole(0)))
    return {"fin_budget_line": list(lines.values()), "fin_expenditure": [e for e, _ in expenditures]}


def _contracts(rng: random.Random, program: Program, line_id: str, year: int) -> list[dict[str, Any]]:
    """A contractor programme's payments: a few instalments through the year so far."""
    total = rng.randint(*program.scale) * 10_000
    count = rng.randint(3, 8)
    payments = []
    districts = list(BY_CODE.values())
    for index in range(count):
        day = random_day(rng, date(year, 1, 15), date(year, 12, 20))
        at = office_time(rng, day)
        if at > NOW:
            continue
        district = districts[index % len(districts)].name
        payments.append(
            {
                "expenditure_id": "",
                "budget_line_id": line_id,
                "department": program.department,
                "payee": program.payee.format(district=district),
                "amount": whole(total // count // 100 * 100),
                "paid_at": at,
                "purpose": f"{program.name}第{index + 1}期款",
            }
        )
    return payments


def _appropriation(rng: random.Random, program: Program, year: int, spent: Decimal) -> Decimal:
    """What was approved: a little more than was spent in a closed year; for the running year,
    about twice the first half's spending; a planned amount where nothing was spent."""
    if spent == 0:
        low, high = program.scale if program.scale != (0, 0) else (100, 200)
        return whole(rng.randint(low, high) * 10_000)
    elapsed = (REFERENCE_DATE - date(year, 1, 1)).days + 1
    share_of_year = min(1.0, elapsed / 365)
    planned = float(spent) / share_of_year * rng.uniform(1.02, 1.12)
    return whole(math.ceil(planned / 10_000) * 10_000)
