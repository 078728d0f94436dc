"""Education: students in the city's schools, the financial aid granted to them each semester,
and its payment.

Children of households on the minimum living guarantee or extreme-poverty support receive aid
every semester; a few others are certified in hardship; parents who ask the hotline may get a
one-off hardship grant for their child. Each aid is paid by one service delivery.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from hub.demo import deliveries
from hub.demo.geography import District
from hub.demo.hotline import Request
from hub.demo.money import stepped, whole
from hub.demo.population import Person, Population
from hub.demo.timeline import NOW, SCHOOL_YEAR_START, age_on, office_time, random_day

DEPARTMENT = "education"

KINDERGARTEN, PRIMARY, JUNIOR, SENIOR, VOCATIONAL, UNIVERSITY = "学前", "小学", "初中", "高中", "中职", "大学"
HARDSHIP_GRANT = "家庭经济困难学生临时补助"

UNIVERSITIES = (
    "浙江大学",
    "杭州师范大学",
    "浙江工业大学",
    "杭州电子科技大学",
    "浙江理工大学",
    "浙江工商大学",
    "浙江传媒学院",
    "杭州职业技术学院",
    "浙江经济职业技术学院",
)
_GRADES = {
    KINDERGARTEN: ("小班", "中班", "大班"),
    PRIMARY: ("一年级", "二年级", "三年级", "四年级", "五年级", "六年级"),
    JUNIOR: ("七年级", "八年级", "九年级"),
    SENIOR: ("高一", "高二", "高三"),
    VOCATIONAL: ("中职一年级", "中职二年级", "中职三年级"),
    UNIVERSITY: ("大一", "大二", "大三", "大四"),
}
# Aid per semester by stage: its name and the amounts (yuan) it is granted at.
_AID: dict[str, tuple[str, tuple[int, ...]]] = {
    KINDERGARTEN: ("学前教育幼儿资助", (750,)),
    PRIMARY: ("义务教育家庭经济困难学生生活补助", (500,)),
    JUNIOR: ("义务教育家庭经济困难学生生活补助", (625,)),
    SENIOR: ("普通高中国家助学金", (750, 1000, 1250)),
    VOCATIONAL: ("中等职业教育国家助学金", (1000,)),
    UNIVERSITY: ("本专科生国家助学金", (1250, 1850, 2450)),
}


@dataclass(frozen=True)
class Term:
    academic_year: str
    semester: str
    grants_from: date
    grants_to: date
    # The term of the previous academic year: only students who were already at the same school.
    earlier: bool = False


TERMS = (
    Term("2024-2025", "春季", date(2025, 3, 10), date(2025, 3, 31), earlier=True),
    Term("2025-2026", "秋季", date(2025, 10, 10), date(2025, 10, 31)),
    Term("2025-2026", "春季", date(2026, 3, 10), date(2026, 3, 31)),
)


@dataclass(frozen=True)
class Student:
    student_id: str
    person: Person
    stage: str
    year_in_stage: int  # 0 for the first year of the stage
    school: str

    @property
    def grade(self) -> str:
        return _GRADES[self.stage][self.year_in_stage]


@dataclass
class Education:
    students: list[Student]
    aids: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)

    def rows(self) -> dict[str, list[dict[str, Any]]]:
        students = [
            {
                "student_id": s.student_id,
                "id_number": s.person.id_number,
                "name": s.person.name,
                "school": s.school,
                "stage": s.stage,
                "grade": s.grade,
                "enrolled_at": date(SCHOOL_YEAR_START.year - s.year_in_stage, 9, 1),
            }
            for s in self.students
        ]
        return {
            "edu_student": students,
            "edu_student_aid": self.aids,
            "edu_service_delivery": self.deliveries,
        }


def enrol(rng: random.Random, population: Population) -> Education:
    """Everyone of school age in the academic year running on the reference date."""
    students: list[Student] = []
    for person in population.persons:
        age = age_on(person.birth_date, SCHOOL_YEAR_START)
        placed = _stage(rng, age)
        if placed is None:
            continue
        stage, year = placed
        school = _school(person, stage)
        students.append(Student(f"ST{len(students) + 1:08d}", person, stage, year, school))
    return Education(students)


def _stage(rng: random.Random, age: int) -> tuple[str, int] | None:
    if 3 <= age <= 5:
        return (KINDERGARTEN, age - 3) if rng.random() < 0.85 else None
    if 6 <= age <= 11:
        return PRIMARY, age - 6
    if 12 <= age <= 14:
        return JUNIOR, age - 12
    if 15 <= age <= 17:
        roll = rng.random()
        return (SENIOR, age - 15) if roll < 0.6 else (VOCATIONAL, age - 15) if roll < 0.95 else None
    if 18 <= age <= 21:
        return (UNIVERSITY, age - 18) if rng.random() < 0.55 else None
    return None


def _school(person: Person, stage: str) -> str:
    # Chosen by household, so brothers and sisters at the same stage share a school.
    pick = int(person.household.household_id[1:])
    district: District = person.district
    town = person.household.town.removesuffix("街道").removesuffix("镇")
    short = district.short
    if stage == KINDERGARTEN:
        return f"{short}{('实验', '阳光', '春芽', '蓝天')[pick % 4]}幼儿园"
    if stage == PRIMARY:
        return f"{town}中心小学" if district.rural else f"{short}{('实验', '育才', '崇文', '城南')[pick % 4]}小学"
    if stage == JUNIOR:
        return f"{town}初级中学" if district.rural else f"{short}{('第一', '第二', '实验', '文渊')[pick % 4]}中学"
    if stage == SENIOR:
        return ("杭州第二中学", "杭州学军中学", f"{short}高级中学", f"{short}第二高级中学")[pick % 4]
    if stage == VOCATIONAL:
        return f"{short}职业高级中学"
    return UNIVERSITIES[pick % len(UNIVERSITIES)]


def schools_by_household(education: Education) -> dict[str, str]:
    """A school one child of each household attends, for what parents tell the hotline."""
    schools: dict[str, str] = {}
    for student in education.students:
        schools.setdefault(student.person.household.household_id, student.school)
    return schools


def grant(
    rng: random.Random,
    education: Education,
    low_income: Mapping[str, list[tuple[date, date | None]]],
    requests: list[Request],
) -> None:
    """Aid for each term and for the hotline's hardship requests, each paid once."""
    pairs: list[tuple[dict[str, Any], dict[str, Any]]] = []
    by_household: dict[str, list[Student]] = {}
    for student in education.students:
        by_household.setdefault(student.person.household.household_id, []).append(student)
        hardship = rng.random() < 0.03
        tier = rng.randrange(3)
        spans = low_income.get(student.person.household.household_id, ())
        for term in TERMS:
            if term.earlier and student.year_in_stage == 0:
                continue
            granted = random_day(rng, term.grants_from, term.grants_to)
            poor = any(start <= granted and (end is None or granted <= end) for start, end in spans)
            if poor or hardship:
                name, amounts = _AID[student.stage]
                amount = whole(amounts[min(tier, len(amounts) - 1)])
                pairs.append(_aid(rng, student, name, term.academic_year, term.semester, amount, granted, None))
    for request in requests:
        children = by_household.get(request.caller.household.household_id)
        if request.need.key != "student_aid" or not children or rng.random() >= 0.5:
            continue
        granted = (request.received_at + timedelta(days=rng.randint(3, 9))).date()
        year = granted.year if granted.month >= 9 else granted.year - 1
        semester = "秋季" if granted.month >= 9 or granted.month == 1 else "春季"
        amount = stepped(rng, 500, 2000, 100)
        pairs.append(
            _aid(
                rng,
                children[0],
                HARDSHIP_GRANT,
                f"{year}-{year + 1}",
                semester,
                amount,
                granted,
                request.request_id,
            )
        )
    pairs = [(a, d) for a, d in pairs if d["delivered_at"] <= NOW]
    pairs.sort(key=lambda p: (p[0]["granted_at"], p[0]["student_id"], p[0]["aid_type"]))
    for number, (aid, delivery) in enumerate(pairs, 1):
        aid["aid_id"] = f"AID{number:07d}"
        delivery["aid_id"] = aid["aid_id"]
    education.aids = [a for a, _ in pairs]
    education.deliveries = deliveries.number([d for _, d in pairs], "EDSD")


def _aid(
    rng: random.Random,
    student: Student,
    aid_type: str,
    academic_year: str,
    semester: str,
    amount: Decimal,
    granted: date,
    request_id: str | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    person = student.person
    aid = {
        "aid_id": "",
        "student_id": student.student_id,
        "student_id_number": person.id_number,
        "student_name": person.name,
        "school": student.school,
        "aid_type": aid_type,
        "academic_year": academic_year,
        "semester": semester,
        "amount": amount,
        "granted_at": granted,
    }
    # Hardship grants are paid within days; term aid with the next batch, within three weeks.
    wait = rng.randint(1, 3) if request_id else rng.randint(5, 20)
    delivery = {
        "delivery_id": "",
        "aid_id": "",
        "id_number": person.id_number,
        "recipient_name": person.name,
        "service_type": aid_type,
        "delivered_at": office_time(rng, granted + timedelta(days=wait)),
        "amount": amount,
        "district_code": person.district.code,
        "status": deliveries.status(rng),
        "request_id": request_id,
        "expenditure_id": None,
    }
    return aid, delivery
