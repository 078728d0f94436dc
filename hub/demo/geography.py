"""The demo city: eight districts and counties of Hangzhou, urban and rural, with their streets.

The area codes are the real administrative codes (GB/T 2260), so the first six digits of every
synthetic resident ID number name the district the person is registered in.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

CITY = "杭州市"


@dataclass(frozen=True)
class District:
    code: str
    name: str
    type: str  # urban | rural
    # Relative share of the demo's households.
    weight: int
    # Sub-districts (街道) in the city, towns (镇) in the counties.
    towns: tuple[str, ...]
    # Roads for urban addresses; rural addresses name a village instead.
    roads: tuple[str, ...] = ()

    @property
    def short(self) -> str:
        """The name without 区/县/市, as schools and hospitals use it."""
        return self.name[:-1]

    @property
    def rural(self) -> bool:
        return self.type == "rural"


DISTRICTS: tuple[District, ...] = (
    District(
        "330102",
        "上城区",
        "urban",
        15,
        ("湖滨街道", "清波街道", "小营街道", "望江街道", "南星街道", "紫阳街道", "凯旋街道", "采荷街道"),
        ("平海路", "解放路", "庆春路", "望江路", "秋涛路", "凯旋路", "清泰街"),
    ),
    District(
        "330105",
        "拱墅区",
        "urban",
        15,
        ("米市巷街道", "湖墅街道", "小河街道", "和睦街道", "大关街道", "祥符街道", "武林街道", "朝晖街道"),
        ("湖墅南路", "莫干山路", "大关路", "上塘路", "登云路", "体育场路", "米市巷"),
    ),
    District(
        "330106",
        "西湖区",
        "urban",
        15,
        ("北山街道", "西溪街道", "翠苑街道", "文新街道", "古荡街道", "留下街道", "转塘街道", "蒋村街道"),
        ("文三路", "文二路", "古墩路", "天目山路", "留和路", "西溪路", "文一西路"),
    ),
    District(
        "330108",
        "滨江区",
        "urban",
        8,
        ("西兴街道", "长河街道", "浦沿街道"),
        ("江南大道", "滨盛路", "长河路", "江虹路", "浦沿路"),
    ),
    District(
        "330109",
        "萧山区",
        "urban",
        17,
        ("城厢街道", "北干街道", "蜀山街道", "新塘街道", "宁围街道", "瓜沥镇"),
        ("市心路", "人民路", "育才路", "金城路", "北干山南路", "建设一路"),
    ),
    District(
        "330122",
        "桐庐县",
        "rural",
        10,
        ("桐君街道", "分水镇", "富春江镇", "横村镇", "江南镇", "百江镇"),
    ),
    District(
        "330127",
        "淳安县",
        "rural",
        10,
        ("千岛湖镇", "汾口镇", "威坪镇", "临岐镇", "姜家镇", "文昌镇"),
    ),
    District(
        "330182",
        "建德市",
        "rural",
        10,
        ("新安江街道", "梅城镇", "寿昌镇", "乾潭镇", "大同镇", "杨村桥镇"),
    ),
)

BY_CODE = {d.code: d for d in DISTRICTS}

_VILLAGE_FIRST = "上下东西南北新大小石竹茶梅枫桃"
_VILLAGE_LAST = "溪坞岭坑塘湾源山口畈"


def pick_district(rng: random.Random) -> District:
    return rng.choices(DISTRICTS, weights=[d.weight for d in DISTRICTS])[0]


def address(rng: random.Random, district: District, town: str) -> str:
    """A street address in `town` of `district`: a flat in the city, a house in a village."""
    if district.rural:
        village = rng.choice(_VILLAGE_FIRST) + rng.choice(_VILLAGE_LAST) + "村"
        return f"{CITY}{district.name}{town}{village}{rng.randint(1, 180)}号"
    road = rng.choice(district.roads)
    floor, room = rng.randint(1, 18), rng.randint(1, 4)
    return (
        f"{CITY}{district.name}{town}{road}{rng.randint(1, 400)}号"
        f"{rng.randint(1, 30)}幢{rng.randint(1, 4)}单元{floor}{room:02d}室"
    )


def district_rows() -> list[dict[str, Any]]:
    return [{"code": d.code, "name": d.name, "type": d.type} for d in DISTRICTS]
