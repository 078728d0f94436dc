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
from hub.demo.population import Person, Population
from hub.demo.timeline import NOW, REFERENCE_DATE, WINDOW_START, random_day

REQUESTS = 6_000

ACCEPTED, IN_PROGRESS, CLOSED, OVERDUE = "受理", "办理中", "已办结", "超期"

CHANNELS = ("电话", "浙里办APP", "微信公众号", "网站", "市长信箱", "短信")
_CHANNEL_WEIGHTS = (55, 15, 12, 10, 5, 3)
# Calls by hour of day: the line is open around the clock but busiest in office hours.
_HOUR_CUM = tuple(accumulate((1, 1, 1, 1, 1, 1, 2, 5, 9, 10, 10, 8, 5, 7, 9, 9, 8, 7, 5, 5, 4, 3, 2, 1)))
_RELATIVES = ("父亲", "母亲", "丈夫", "妻子", "孩子", "老伴")


@dataclass(frozen=True)
class Need:
    key: str
    category: str
    department: str  # the department the request is assigned to
    weight: float
    pool: str  # who calls: adults, working_age, with_student, with_elder
    days: int  # time allowed before the request is overdue
    templates: tuple[str, ...]


NEEDS = (
    Need("temp_relief", "社会救助", "civil_affairs", 11, "adults", 15, (
        "本人住在{place}，{relative}突发重病住院，家中积蓄已花光，生活陷入困难，希望申请临时救助。",
        "来电人反映家中房屋因暴雨受损，一家人暂时无处居住，询问能否获得临时救助。",
        "本人因工受伤失去收入来源，孩子还在上学，家庭生活困难，请求政府给予临时救助。",
        "来电人称{relative}确诊恶性肿瘤，自付医疗费用较高，家庭难以承担，请求救助。",
    )),
    Need("dibao_apply", "社会救助", "civil_affairs", 6, "adults", 15, (
        "本人家住{place}，夫妻二人均无固定收入，想咨询如何申请最低生活保障。",
        "来电人反映其家庭人均收入低于当地低保标准，已向街道提交材料一个月仍未答复，请求核实。",
        "本人患慢性病长期无法工作，询问低保申请条件和需要准备的材料。",
    )),
    Need("elderly_care", "养老", "civil_affairs", 6, "with_elder", 15, (
        "来电人反映家中{relative}年事已高、行动不便，希望申请居家养老上门服务。",
        "本人住在{place}，老伴卧床需要照护，询问居家养老服务补贴如何申请。",
        "来电人希望为独居的{relative}申请助餐、助浴服务。",
    )),
    Need("elderly_allowance", "养老", "civil_affairs", 3, "with_elder", 5, (
        "来电人反映{relative}已满80周岁，高龄津贴至今未到账，请求查询。",
        "咨询高龄津贴的发放标准和发放时间。",
    )),
    Need("pension_query", "养老", "human_resources", 5, "with_elder", 5, (
        "本人已办理退休，养老金本月未按时到账，请求核查。",
        "咨询今年基本养老金调整的标准和补发时间。",
        "来电人询问城乡居民养老保险缴费档次及补缴政策。",
    )),
    Need("job_training", "就业", "human_resources", 8, "working_age", 15, (
        "本人失业在家，想参加电工或育婴员职业技能培训，咨询是否有培训补贴。",
        "来电人反映已完成职业技能培训并取得证书，培训补贴至今未申领成功，请求协助。",
        "本人{age}岁，原单位倒闭后一直没找到工作，希望政府提供就业培训。",
    )),
    Need("startup", "就业", "human_resources", 3, "working_age", 15, (
        "本人准备在{place}开一家小吃店，咨询一次性创业补贴的申请条件。",
        "来电人已注册个体工商户半年，询问创业补贴和创业担保贷款如何办理。",
    )),
    Need("wage_arrears", "就业", "human_resources", 5, "working_age", 15, (
        "来电人反映在{place}某工地务工，被拖欠工资三个月，请求协调解决。",
        "本人所在公司已两个月未发工资，也未缴纳社保，请求劳动监察介入。",
    )),
    Need("social_insurance", "社保", "human_resources", 6, "working_age", 5, (
        "本人从外地回杭工作，咨询社保关系转移接续的办理流程。",
        "来电人反映单位未按实际工资基数缴纳社保，请求核查。",
    )),
    Need("student_aid", "教育", "education", 7, "with_student", 15, (
        "来电人反映家庭经济困难，孩子在{school}就读，希望申请学生资助。",
        "本人家中{relative}突发疾病，孩子的学费和生活费难以负担，请求帮助。",
        "咨询家庭经济困难学生认定的办理流程，孩子在{school}上学。",
    )),
    Need("school_enrol", "教育", "education", 5, "adults", 5, (
        "咨询孩子明年上小学的学区划分和报名时间。",
        "来电人反映孩子随迁入学积分不够，请求协调就近入学。",
    )),
    Need("medical_complaint", "医疗", "health", 8, "adults", 15, (
        "来电人反映在{hospital}就诊排队时间过长，医生态度不好，请求处理。",
        "本人对{hospital}收费有疑问，认为存在重复收费，请求核查。",
    )),
    Need("vaccine", "医疗", "health", 4, "adults", 5, (
        "咨询{place}社区卫生服务中心成人疫苗接种的预约方式。",
        "来电人询问孩子的免疫规划疫苗补种安排。",
    )),
    Need("housing", "住房", "housing", 8, "adults", 15, (
        "来电人询问公共租赁住房的申请条件和轮候时间。",
        "本人租住的房屋年久失修，房东拒绝维修，请求相关部门协调。",
        "咨询老旧小区加装电梯的补助政策。",
    )),
    Need("hukou", "户籍", "population", 7, "adults", 5, (
        "来电人咨询孩子出生后办理户口登记需要的材料。",
        "本人身份证遗失，询问补办流程和办理时限。",
        "咨询人才落户{place}的条件。",
    )),
)
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
                satisfaction = _score(rng, bool(request.answers))
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
    if rng.random() < (0.18 if request.need.key in _SERVED else 0.06):
        return (OVERDUE if deadline < NOW else IN_PROGRESS), None
    span = (deadline - received).total_seconds()
    closed = received + timedelta(seconds=rng.uniform(0.1, 1.1) * span)
    if closed <= NOW:
        return CLOSED, closed
    return (OVERDUE if deadline < NOW else IN_PROGRESS), None


_SERVED = {"temp_relief", "dibao_apply", "elderly_care", "job_training", "startup", "student_aid"}


def _score(rng: random.Random, served: bool) -> int:
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
