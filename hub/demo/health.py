"""Health: hospital and clinic visits with their ICD-10 diagnoses and costs.

The old visit doctors more often and are admitted more often; diagnoses fit the patient's age
and sex. Civil affairs reads the inpatient stays to grant medical assistance to poor patients.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from itertools import accumulate
from typing import Any

from hub.demo.identities import FEMALE
from hub.demo.money import share, yuan
from hub.demo.population import Person, Population
from hub.demo.timeline import REFERENCE_DATE, WINDOW_START, random_day

OUTPATIENT, EMERGENCY, INPATIENT = "门诊", "急诊", "住院"

CITY_HOSPITALS = (
    "浙江大学医学院附属第一医院",
    "浙江大学医学院附属第二医院",
    "浙江省人民医院",
    "杭州市第一人民医院",
)
CHILDREN_HOSPITAL = "浙江大学医学院附属儿童医院"
MATERNITY_HOSPITAL = "浙江大学医学院附属妇产科医院"


@dataclass(frozen=True)
class Diagnosis:
    label: str  # ICD-10 code and the Chinese name, as the record shows it
    department: str
    # Relative frequency among children (under 15), adults and the elderly (60 and over).
    weights: tuple[float, float, float]
    inpatient: float  # chance that a visit for it is an admission
    cost: float  # scale of its cost against an ordinary visit
    sex: str | None = None


DIAGNOSES = (
    Diagnosis("J06.9 急性上呼吸道感染", "呼吸内科", (30, 18, 8), 0.01, 0.8),
    Diagnosis("A09 感染性腹泻", "消化内科", (10, 3, 2), 0.03, 0.8),
    Diagnosis("J18.9 肺炎", "呼吸内科", (5, 2, 4), 0.35, 1.5),
    Diagnosis("J45.9 哮喘", "呼吸内科", (3, 1, 1), 0.05, 1.2),
    Diagnosis("H52.1 近视", "眼科", (6, 1, 0), 0.0, 0.6),
    Diagnosis("Z00.1 儿童常规健康检查", "儿童保健科", (10, 0, 0), 0.0, 0.5),
    Diagnosis("K29.7 胃炎", "消化内科", (0, 8, 5), 0.02, 1.0),
    Diagnosis("M54.5 腰痛", "骨科", (0, 6, 5), 0.02, 0.9),
    Diagnosis("I10 原发性高血压", "心血管内科", (0, 6, 20), 0.02, 0.7),
    Diagnosis("E11.9 2型糖尿病", "内分泌科", (0, 4, 12), 0.03, 0.9),
    Diagnosis("E78.5 高脂血症", "内分泌科", (0, 3, 6), 0.0, 0.7),
    Diagnosis("N39.0 泌尿道感染", "泌尿外科", (1, 3, 3), 0.03, 0.9),
    Diagnosis("K35.8 急性阑尾炎", "普外科", (1, 1, 0.3), 1.0, 1.0),
    Diagnosis("S52.5 桡骨下端骨折", "骨科", (1, 1, 1.5), 0.5, 1.2),
    Diagnosis("F32.9 抑郁发作", "精神科", (0.3, 2, 1), 0.05, 1.1),
    Diagnosis("O80 单胎顺产", "产科", (0, 2, 0), 1.0, 0.6, FEMALE),
    Diagnosis("L30.9 皮炎", "皮肤科", (4, 4, 2), 0.0, 0.6),
    Diagnosis("Z00.0 一般医学检查", "体检中心", (0, 6, 5), 0.0, 1.0),
    Diagnosis("K80.2 胆囊结石", "肝胆外科", (0, 1.5, 2), 0.4, 1.3),
    Diagnosis("I25.1 动脉硬化性心脏病", "心血管内科", (0, 0.5, 5), 0.25, 1.6),
    Diagnosis("I63.9 脑梗死", "神经内科", (0, 0.3, 3), 0.8, 2.0),
    Diagnosis("J44.9 慢性阻塞性肺病", "呼吸内科", (0, 0.3, 4), 0.3, 1.4),
    Diagnosis("H25.9 老年性白内障", "眼科", (0, 0.1, 3), 0.5, 0.8),
    Diagnosis("M17.9 膝关节病", "骨科", (0, 0.5, 4), 0.1, 1.4),
    Diagnosis("C34.9 支气管或肺恶性肿瘤", "肿瘤科", (0, 0.2, 0.8), 0.9, 3.5),
    Diagnosis("I50.9 心力衰竭", "心血管内科", (0, 0.1, 1.5), 0.7, 1.8),
)

# Expected visits in the eighteen months of the window, by age.
_RATES = ((6, 3.0), (15, 1.5), (45, 1.0), (60, 1.8), (80, 3.5), (200, 4.5))


def _table(band: int, sex: str) -> tuple[tuple[Diagnosis, ...], tuple[float, ...]]:
    fitting = tuple(d for d in DIAGNOSES if d.weights[band] > 0 and d.sex in (None, sex))
    return fitting, tuple(accumulate(d.weights[band] for d in fitting))


_TABLES = {(band, sex): _table(band, sex) for band in range(3) for sex in ("男", "女")}


@dataclass
class Visits:
    rows: list[dict[str, Any]]
    # Inpatient stays by patient ID number, for medical assistance.
    stays: dict[str, list[dict[str, Any]]]


def visits(rng: random.Random, population: Population) -> Visits:
    rows: list[dict[str, Any]] = []
    for person in population.persons:
        age = person.age
        rate = next(r for limit, r in _RATES if age < limit)
        for _ in range(_poisson(rng, rate)):
            rows.append(_visit(rng, person, age))
    rows.sort(key=lambda r: (r["visit_date"], r["patient_id_number"]))
    stays: dict[str, list[dict[str, Any]]] = {}
    for number, row in enumerate(rows, 1):
        row["visit_id"] = f"VS{number:07d}"
        if row["visit_type"] == INPATIENT:
            stays.setdefault(row["patient_id_number"], []).append(row)
    return Visits(rows, stays)


def _visit(rng: random.Random, person: Person, age: int) -> dict[str, Any]:
    band = 0 if age < 15 else 1 if age < 60 else 2
    candidates, cum = _TABLES[(band, person.gender)]
    diagnosis = rng.choices(candidates, cum_weights=cum)[0]
    admitted = rng.random() < diagnosis.inpatient * (1.4 if band == 2 else 1.0)
    kind = INPATIENT if admitted else EMERGENCY if rng.random() < 0.07 else OUTPATIENT
    day = random_day(rng, WINDOW_START, REFERENCE_DATE)
    discharged = None
    if kind == INPATIENT:
        end = day + timedelta(days=rng.randint(2, 14))
        discharged = end if end <= REFERENCE_DATE else None  # still in hospital
    median = {OUTPATIENT: 180.0, EMERGENCY: 450.0, INPATIENT: 12_000.0}[kind] * diagnosis.cost
    cost = yuan(max(1500, round(rng.lognormvariate(math.log(median), 0.55) * 100)))
    covered = (
        0.0 if diagnosis.label.startswith("Z00") else rng.uniform(0.55, 0.8) if admitted else rng.uniform(0.3, 0.6)
    )
    return {
        "visit_id": "",
        "patient_id_number": person.id_number,
        "patient_name": person.name,
        "hospital": _hospital(rng, person, kind, diagnosis, band),
        "visit_type": kind,
        "visit_date": day,
        "discharge_date": discharged,
        "department_name": "儿科"
        if band == 0 and diagnosis.department in ("呼吸内科", "消化内科")
        else diagnosis.department,
        "diagnosis": diagnosis.label,
        "cost": cost,
        "insurance_paid": share(cost, covered),
    }


def _hospital(rng: random.Random, person: Person, kind: str, diagnosis: Diagnosis, band: int) -> str:
    district = person.district
    town = person.household.town
    roll = rng.random()
    if diagnosis.label.startswith("O80"):
        return MATERNITY_HOSPITAL if roll < 0.4 else f"{district.name}妇幼保健院"
    if kind == OUTPATIENT and roll < 0.5:
        return f"{town}卫生院" if town.endswith("镇") else f"{town}社区卫生服务中心"
    if roll < (0.8 if kind == OUTPATIENT else 0.6):
        return f"{district.name}中医院" if rng.random() < 0.25 else f"{district.name}人民医院"
    return CHILDREN_HOSPITAL if band == 0 else rng.choice(CITY_HOSPITALS)


def _poisson(rng: random.Random, rate: float) -> int:
    limit, product, count = math.exp(-rate), rng.random(), 0
    while product > limit:
        product *= rng.random()
        count += 1
    return count


def out_of_pocket(stay: dict[str, Any]) -> Decimal:
    cost: Decimal = stay["cost"]
    paid: Decimal = stay["insurance_paid"]
    return cost - paid
