"""Synthetic identities: Chinese names, resident ID numbers and mobile numbers.

ID numbers follow GB 11643-1999: six digits of area code, the birth date, a three-digit
sequence whose last digit is odd for men and even for women, and a check character. Every
number and mobile handed out is unique within one factory, so the demo's registry has no
accidental duplicates.
"""

from __future__ import annotations

import random
from datetime import date
from itertools import accumulate

CHECK_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"

MALE, FEMALE = "男", "女"

# The hundred commonest surnames with their approximate share in per cent (2020 census order).
_SURNAMES = (
    "王7.1 李7.0 张6.7 刘5.4 陈4.6 杨3.1 黄2.2 赵2.0 吴2.0 周1.9 徐1.5 孙1.5 马1.2 朱1.2 胡1.1 "
    "郭1.1 何1.0 林1.0 高1.0 罗0.9 郑0.8 梁0.8 谢0.7 宋0.6 唐0.6 许0.6 韩0.6 邓0.5 冯0.5 曹0.5 "
    "彭0.5 曾0.5 肖0.5 田0.4 董0.4 潘0.4 袁0.4 蔡0.4 蒋0.4 余0.4 于0.4 杜0.4 叶0.4 程0.4 魏0.3 "
    "苏0.3 吕0.3 丁0.3 任0.3 卢0.3 姚0.3 沈0.3 钟0.3 姜0.3 崔0.3 谭0.3 陆0.3 范0.3 汪0.3 廖0.3 "
    "石0.3 金0.3 韦0.2 贾0.2 夏0.2 付0.2 方0.2 邹0.2 熊0.2 白0.2 孟0.2 秦0.2 邱0.2 侯0.2 江0.2 "
    "尹0.2 薛0.2 闫0.2 段0.2 雷0.2 龙0.2 黎0.2 史0.2 陶0.2 贺0.2 毛0.2 郝0.2 顾0.2 龚0.2 邵0.2 "
    "万0.1 覃0.1 武0.1 钱0.1 戴0.1 严0.1 莫0.1 孔0.1 向0.1 常0.1 欧阳0.03 诸葛0.01"
).split()
SURNAMES = tuple(s.rstrip("0123456789.") for s in _SURNAMES)
_SURNAME_CUM = tuple(accumulate(float(s[len(name) :]) for s, name in zip(_SURNAMES, SURNAMES, strict=True)))

# Given names by the era people were born in: (two-character names, single characters).
_GIVEN: dict[tuple[str, int], tuple[tuple[str, ...], tuple[str, ...]]] = {
    (MALE, 0): (
        tuple("建国 建华 国强 国庆 志强 志明 永强 永福 德明 德福 金生 水根 阿根 荣华 福生 立新 "
              "卫东 红兵 文华 桂林 树林 长庚 伯庆 明德 振华 国平 宝根 海林".split()),
        tuple("福 贵 富 荣 海 林 强 文 根 金 水 生 忠 宝 山 洪 永 春 德 明".split()),
    ),
    (FEMALE, 0): (
        tuple("秀英 桂英 秀兰 玉兰 桂兰 凤英 淑珍 玉珍 秀珍 翠花 桂芳 素芬 月英 金凤 丽华 美英 "
              "菊英 彩凤 秀芳 爱华 玉梅 素珍 冬梅 春兰 雪英 阿娣 杏花 美娟".split()),
        tuple("英 兰 珍 芳 凤 梅 花 娣 琴 秀 菊 娥 素 翠 月 霞".split()),
    ),
    (MALE, 1): (
        tuple("志伟 建军 海涛 晓东 国华 文杰 俊杰 宏伟 建平 晓明 永刚 立军 志刚 剑锋 海峰 伟东 "
              "振宇 学军 春雷 卫国 勇军 晓峰 建伟 鹏飞 国栋 家明".split()),
        tuple("伟 磊 勇 军 涛 斌 强 鹏 杰 浩 超 波 辉 刚 健 明 亮 俊 峰 平 华 毅 东 晨".split()),
    ),
    (FEMALE, 1): (
        tuple("晓燕 丽娟 海燕 雪梅 春燕 小红 丽萍 晓红 秀丽 丽丽 晓丽 红梅 美玲 燕萍 慧敏 玉洁 "
              "晓霞 文静 丽君 佳丽 雅琴 亚萍".split()),
        tuple("丽 静 敏 燕 艳 娟 霞 芳 娜 丹 玲 婷 萍 红 洁 琳 颖 倩 蕾 雪".split()),
    ),
    (MALE, 2): (
        tuple("子轩 浩然 宇轩 梓豪 俊熙 浩宇 皓轩 子墨 宇航 博文 嘉豪 天佑 沐宸 睿泽 一鸣 思远 "
              "明轩 俊杰 子豪 铭泽 奕辰 宇泽 文博 家乐 弘毅 承泽 锦程 昊天".split()),
        tuple("轩 睿 哲 宇 晨 阳 昊 凯 航 然 翔 逸 泽 楷 骏 煜".split()),
    ),
    (FEMALE, 2): (
        tuple("梓涵 一诺 欣怡 子涵 诗涵 雨桐 可馨 语桐 梦瑶 思琪 佳怡 若汐 欣妍 雨涵 紫萱 诗琪 "
              "依诺 语嫣 梓萱 佳琪 安琪 沐晴 芷若 书瑶 嘉怡 静怡 心怡 悦然".split()),
        tuple("萱 琪 涵 妍 悦 彤 瑶 怡 馨 蕊 菲 婧 璐 琳 玥 桐".split()),
    ),
}

# Mobile number segments in use by China Mobile, China Unicom and China Telecom.
MOBILE_PREFIXES = (
    *(f"13{d}" for d in range(10)),
    "150", "151", "152", "153", "155", "156", "157", "158", "159",
    *(f"18{d}" for d in range(10)),
    "191", "193", "195", "196", "197", "198", "199",
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
