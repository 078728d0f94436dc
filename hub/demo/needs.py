"""What citizens ask the 12345 hotline for: each need's category, the department it is assigned
to, who tends to call about it, and what callers say.

Six needs can be answered by a service delivery (temporary relief, a minimum living guarantee,
home care, a training or start-up subsidy, student aid); the rest are enquiries and complaints
that a department closes with an answer but no delivery.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Need:
    key: str
    category: str
    department: str  # the department the request is assigned to
    weight: float
    pool: str  # who calls: adults, working_age, with_student, with_elder
    days: int  # time allowed before the request is overdue
    # What callers say; {place}, {relative}, {school}, {hospital} and {age} are filled in.
    templates: tuple[str, ...]


NEEDS = (
    Need(
        key="temp_relief",
        category="社会救助",
        department="civil_affairs",
        weight=11,
        pool="adults",
        days=15,
        templates=(
            "本人住在{place}，{relative}突发重病住院，家中积蓄已花光，生活陷入困难，希望申请临时救助。",
            "来电人反映家中房屋因暴雨受损，一家人暂时无处居住，询问能否获得临时救助。",
            "本人因工受伤失去收入来源，孩子还在上学，家庭生活困难，请求政府给予临时救助。",
            "来电人称{relative}确诊恶性肿瘤，自付医疗费用较高，家庭难以承担，请求救助。",
        ),
    ),
    Need(
        key="dibao_apply",
        category="社会救助",
        department="civil_affairs",
        weight=6,
        pool="adults",
        days=15,
        templates=(
            "本人家住{place}，夫妻二人均无固定收入，想咨询如何申请最低生活保障。",
            "来电人反映其家庭人均收入低于当地低保标准，已向街道提交材料一个月仍未答复，请求核实。",
            "本人患慢性病长期无法工作，询问低保申请条件和需要准备的材料。",
        ),
    ),
    Need(
        key="elderly_care",
        category="养老",
        department="civil_affairs",
        weight=6,
        pool="with_elder",
        days=15,
        templates=(
            "来电人反映家中{relative}年事已高、行动不便，希望申请居家养老上门服务。",
            "本人住在{place}，老伴卧床需要照护，询问居家养老服务补贴如何申请。",
            "来电人希望为独居的{relative}申请助餐、助浴服务。",
        ),
    ),
    Need(
        key="elderly_allowance",
        category="养老",
        department="civil_affairs",
        weight=3,
        pool="with_elder",
        days=5,
        templates=(
            "来电人反映{relative}已满80周岁，高龄津贴至今未到账，请求查询。",
            "咨询高龄津贴的发放标准和发放时间。",
        ),
    ),
    Need(
        key="pension_query",
        category="养老",
        department="human_resources",
        weight=5,
        pool="with_elder",
        days=5,
        templates=(
            "本人已办理退休，养老金本月未按时到账，请求核查。",
            "咨询今年基本养老金调整的标准和补发时间。",
            "来电人询问城乡居民养老保险缴费档次及补缴政策。",
        ),
    ),
    Need(
        key="job_training",
        category="就业",
        department="human_resources",
        weight=8,
        pool="working_age",
        days=15,
        templates=(
            "本人失业在家，想参加电工或育婴员职业技能培训，咨询是否有培训补贴。",
            "来电人反映已完成职业技能培训并取得证书，培训补贴至今未申领成功，请求协助。",
            "本人{age}岁，原单位倒闭后一直没找到工作，希望政府提供就业培训。",
        ),
    ),
    Need(
        key="startup",
        category="就业",
        department="human_resources",
        weight=3,
        pool="working_age",
        days=15,
        templates=(
            "本人准备在{place}开一家小吃店，咨询一次性创业补贴的申请条件。",
            "来电人已注册个体工商户半年，询问创业补贴和创业担保贷款如何办理。",
        ),
    ),
    Need(
        key="wage_arrears",
        category="就业",
        department="human_resources",
        weight=5,
        pool="working_age",
        days=15,
        templates=(
            "来电人反映在{place}某工地务工，被拖欠工资三个月，请求协调解决。",
            "本人所在公司已两个月未发工资，也未缴纳社保，请求劳动监察介入。",
        ),
    ),
    Need(
        key="social_insurance",
        category="社保",
        department="human_resources",
        weight=6,
        pool="working_age",
        days=5,
        templates=(
            "本人从外地回杭工作，咨询社保关系转移接续的办理流程。",
            "来电人反映单位未按实际工资基数缴纳社保，请求核查。",
        ),
    ),
    Need(
        key="student_aid",
        category="教育",
        department="education",
        weight=7,
        pool="with_student",
        days=15,
        templates=(
            "来电人反映家庭经济困难，孩子在{school}就读，希望申请学生资助。",
            "本人家中{relative}突发疾病，孩子的学费和生活费难以负担，请求帮助。",
            "咨询家庭经济困难学生认定的办理流程，孩子在{school}上学。",
        ),
    ),
    Need(
        key="school_enrol",
        category="教育",
        department="education",
        weight=5,
        pool="adults",
        days=5,
        templates=(
            "咨询孩子明年上小学的学区划分和报名时间。",
            "来电人反映孩子随迁入学积分不够，请求协调就近入学。",
        ),
    ),
    Need(
        key="medical_complaint",
        category="医疗",
        department="health",
        weight=8,
        pool="adults",
        days=15,
        templates=(
            "来电人反映在{hospital}就诊排队时间过长，医生态度不好，请求处理。",
            "本人对{hospital}收费有疑问，认为存在重复收费，请求核查。",
        ),
    ),
    Need(
        key="vaccine",
        category="医疗",
        department="health",
        weight=4,
        pool="adults",
        days=5,
        templates=(
            "咨询{place}社区卫生服务中心成人疫苗接种的预约方式。",
            "来电人询问孩子的免疫规划疫苗补种安排。",
        ),
    ),
    Need(
        key="housing",
        category="住房",
        department="housing",
        weight=8,
        pool="adults",
        days=15,
        templates=(
            "来电人询问公共租赁住房的申请条件和轮候时间。",
            "本人租住的房屋年久失修，房东拒绝维修，请求相关部门协调。",
            "咨询老旧小区加装电梯的补助政策。",
        ),
    ),
    Need(
        key="hukou",
        category="户籍",
        department="population",
        weight=7,
        pool="adults",
        days=5,
        templates=(
            "来电人咨询孩子出生后办理户口登记需要的材料。",
            "本人身份证遗失，询问补办流程和办理时限。",
            "咨询人才落户{place}的条件。",
        ),
    ),
)

# The needs a department may answer with a service delivery.
SERVED = frozenset({"temp_relief", "dibao_apply", "elderly_care", "job_training", "startup", "student_aid"})
