"""Synthetic identities: Chinese names, resident ID numbers and mobile numbers.

ID numbers follow GB 11643-1999: six digits of area code, the birth date, a three-digit
sequence whose last digit is odd for men and even for women, and a check character. Every
number and mobile handed out is unique within one factory, so the demo's registry has no
accidental duplicates.
"""

from __future__ import annotations

import random
import re
from datetime import date
from itertools import accumulate

CHECK_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"

MALE, FEMALE = "男", "女"

# The hundred commonest surnames with their approximate share in per cent (2020 census order).
_SURNAME_TABLE = """
王7.1 李7.0 张6.7 刘5.4 陈4.6 杨3.1 黄2.2 赵2.0 吴2.0 周1.9 徐1.5 孙1.5 马1.2 朱1.2 胡1.1 郭1.1
何1.0 林1.0 高1.0 罗0.9 郑0.8 梁0.8 谢0.7 宋0.6 唐0.6 许0.6 韩0.6 邓0.5 冯0.5 曹0.5 彭0.5 曾0.5
肖0.5 田0.4 董0.4 潘0.4 袁0.4 蔡0.4 蒋0.4 余0.4 于0.4 杜0.4 叶0.4 程0.4 魏0.3 苏0.3 吕0.3 丁0.3
任0.3 卢0.3 姚0.3 沈0.3 钟0.3 姜0.3 崔0.3 谭0.3 陆0.3 范0.3 汪0.3 廖0.3 石0.3 金0.3 韦0.2 贾0.2
夏0.2 付0.2 方0.2 邹0.2 熊0.2 白0.2 孟0.2 秦0.2 邱0.2 侯0.2 江0.2 尹0.2 薛0.2 闫0.2 段0.2 雷0.2
龙0.2 黎0.2 史0.2 陶0.2 贺0.2 毛0.2 郝0.2 顾0.2 龚0.2 邵0.2 万0.1 覃0.1 武0.1 钱0.1 戴0.1 严0.1
莫0.1 孔0.1 向0.1 常0.1 欧阳0.03 诸葛0.01
"""
_SURNAME_PAIRS = re.findall(r"(\D+?)([\d.]+)", _SURNAME_TABLE.replace(" ", "").replace("\n", ""))
SURNAMES: tuple[str, ...] = tuple(name for name, _ in _SURNAME_PAIRS)
_SURNAME_CUM = tuple(accumulate(float(share) for _, share in _SURNAME_PAIRS))


def _pairs(text: str) -> tuple[str, ...]:
    """Two-character given names written one after another."""
    return tuple(text[i : i + 2] for i in range(0, len(text), 2))


# Given names by sex and the era people were born in (before 1965, before 1995, since):
# (two-character names, single characters).
_GIVEN: dict[tuple[str, int], tuple[tuple[str, ...], tuple[str, ...]]] = {
    (MALE, 0): (
        _pairs("建国建华国强国庆志强志明永强永福德明德福金生水根阿根荣华福生立新卫东红兵文华桂林树林长庚"),
        tuple("福贵富荣海林强文根金水生忠宝山洪永春德明"),
    ),
    (FEMALE, 0): (
        _pairs("秀英桂英秀兰玉兰桂兰凤英淑珍玉珍秀珍翠花桂芳素芬月英金凤丽华美英菊英彩凤秀芳爱华玉梅"),
        tuple("英兰珍芳凤梅花娣琴秀菊娥素翠月霞"),
    ),
    (MALE, 1): (
        _pairs("志伟建军海涛晓东国华文杰俊杰宏伟建平晓明永刚立军志刚剑锋海峰伟东振宇学军春雷卫国勇军"),
        tuple("伟磊勇军涛斌强鹏杰浩超波辉刚健明亮俊峰平华毅东晨"),
    ),
    (FEMALE, 1): (
        _pairs("晓燕丽娟海燕雪梅春燕小红丽萍晓红秀丽丽丽晓丽红梅美玲燕萍慧敏玉洁晓霞文静丽君佳丽雅琴"),
        tuple("丽静敏燕艳娟霞芳娜丹玲婷萍红洁琳颖倩蕾雪"),
    ),
    (MALE, 2): (
        _pairs("子轩浩然宇轩梓豪俊熙浩宇皓轩子墨宇航博文嘉豪天佑沐宸睿泽一鸣思远明轩子豪铭泽奕辰宇泽"),
        tuple("轩睿哲宇晨阳昊凯航然翔逸泽楷骏煜"),
    ),
    (FEMALE, 2): (
        _pairs("梓涵一诺欣怡子涵诗涵雨桐可馨语桐梦瑶思琪佳怡若汐欣妍雨涵紫萱诗琪依诺语嫣梓萱佳琪安琪"),
        tuple("萱琪涵妍悦彤瑶怡馨蕊菲婧璐琳玥桐"),
    ),
}

# Mobile number segments in use by China Mobile, China Unicom and China Telecom.
MOBILE_PREFIXES = (
    *(f"13{d}" for d in "0123456789"),
    *(f"15{d}" for d in "012356789"),
    *(f"18{d}" for d in "0123456789"),
    *(f"19{d}" for d in "1356789"),
)


def check_char(first17: str) -> str:
    """The GB 11643 check character for the first seventeen digits."""
    total = sum(int(digit) * weight for digit, weight in zip(first17, CHECK_WEIGHTS, strict=True))
    return CHECK_CHARS[total % 11]


def is_valid_id_number(value: str) -> bool:
    """Eighteen characters, a real birth date and the right check character."""
    if len(value) != 18 or not value[:17].isdigit():
        return False
    try:
        birth_date_of(value)
    except ValueError:
        return False
    return check_char(value[:17]) == value[17]


def birth_date_of(id_number: str) -> date:
    return date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))


def gender_of(id_number: str) -> str:
    return MALE if int(id_number[16]) % 2 else FEMALE


def surname(rng: random.Random) -> str:
    return rng.choices(SURNAMES, cum_weights=_SURNAME_CUM)[0]


def given_name(rng: random.Random, gender: str, birth_year: int) -> str:
    era = 0 if birth_year < 1965 else 1 if birth_year < 1995 else 2
    pairs, singles = _GIVEN[(gender, era)]
    roll = rng.random()
    if roll < 0.55:
        return rng.choice(pairs)
    if roll < 0.8:
        return rng.choice(singles)
    first, second = rng.sample(singles, 2)
    return first + second


class IdentityFactory:
    """Hands out ID numbers and mobile numbers, each at most once."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._ids: set[str] = set()
        self._mobiles: set[str] = set()

    def id_number(self, area_code: str, birth: date, gender: str) -> str:
        parity = 1 if gender == MALE else 0
        while True:
            # The sequence's last digit carries the gender; the first two are free.
            sequence = self._rng.randrange(100) * 10 + self._rng.randrange(5) * 2 + parity
            first17 = f"{area_code}{birth:%Y%m%d}{sequence:03d}"
            number = first17 + check_char(first17)
            if number not in self._ids:
                self._ids.add(number)
                return number

    def mobile(self) -> str:
        while True:
            number = f"{self._rng.choice(MOBILE_PREFIXES)}{self._rng.randrange(10**8):08d}"
            if number not in self._mobiles:
                self._mobiles.add(number)
                return number
