"""Reference data for the mock feed: centres, occupations (2022 national classification), names, regions."""

import csv
from pathlib import Path

SUPERVISING_CENTRES_SEED = (
    Path(__file__).resolve().parent.parent / "dbt_project" / "seeds" / "supervising_centres.csv"
)


def _centres() -> dict[str, tuple[str, str]]:
    """code -> (short place name, centre name), from the project's one list of the centres (the dbt seed): the
    mock feed stands in for an outside service, so it reads the file, not the warehouse."""
    with SUPERVISING_CENTRES_SEED.open(encoding="utf-8", newline="") as seed:
        return {
            row["supervising_centre"]: (row["city_zh"], row["supervising_centre_zh"])
            for row in csv.DictReader(seed)
        }


CENTRES = _centres()

# Relative weight of each centre in the generated province (bigger cities have more institutions).
CENTRE_WEIGHTS = [6, 18, 16, 6, 5, 18, 9, 5, 6, 6, 2]

# County-level region codes per centre, used for region_code and resident ID prefixes.
REGIONS: dict[str, list[str]] = {
    "350000": ["350102", "350103", "350104"],
    "350100": ["350102", "350103", "350104", "350105", "350111", "350121", "350181"],
    "350200": ["350203", "350205", "350206", "350211", "350212", "350213"],
    "350300": ["350302", "350303", "350304", "350305", "350322"],
    "350400": ["350404", "350405", "350421", "350423", "350481"],
    "350500": ["350502", "350503", "350504", "350505", "350521", "350582", "350583"],
    "350600": ["350602", "350603", "350622", "350623", "350681"],
    "350700": ["350702", "350703", "350721", "350781", "350782"],
    "350800": ["350802", "350803", "350821", "350823", "350881"],
    "350900": ["350902", "350921", "350922", "350981", "350982"],
    "PT": ["350128"],
}

# (occupation_code, occupation_name, work_type or None) from 中华人民共和国职业分类大典（2022年版）.
OCCUPATIONS: list[tuple[str, str, str | None]] = [
    ("6-31-01-03", "电工", None),
    ("6-18-02-04", "焊工", "电焊工"),
    ("4-10-01-05", "养老护理员", None),
    ("4-03-02-01", "中式烹调师", None),
    ("4-03-02-02", "中式面点师", None),
    ("4-03-02-03", "西式烹调师", None),
    ("4-03-02-04", "西式面点师", None),
    ("6-18-01-01", "车工", None),
    ("6-18-01-02", "铣工", None),
    ("6-20-03-05", "工具钳工", None),
    ("4-12-01-01", "汽车维修工", "汽车机械维修工"),
    ("4-10-03-01", "美容师", None),
    ("4-10-03-02", "美发师", None),
    ("4-07-05-01", "保安员", None),
    ("4-01-02-05", "茶艺师", None),
    ("6-31-01-05", "电梯安装维修工", None),
    ("4-04-05-01", "信息通信网络运行管理员", None),
    ("6-28-01-02", "中央空调系统运行操作员", None),
    ("4-14-01-02", "健康管理师", None),
    ("4-10-01-02", "育婴员", None),
]

INDUSTRY_WORDS = [
    "电气",
    "机械",
    "食品",
    "纺织",
    "鞋业",
    "汽车",
    "电子",
    "建设",
    "物流",
    "餐饮",
    "健康",
    "茶业",
    "精密",
    "船舶",
    "化工",
    "能源",
    "信息",
    "家居",
    "医药",
    "水务",
]
BRAND_WORDS = [
    "闽江",
    "海峡",
    "鼓山",
    "武夷",
    "鹭岛",
    "丝路",
    "榕城",
    "刺桐",
    "九龙江",
    "闽台",
    "清源",
    "东南",
    "天马",
    "金鸡",
    "宏达",
    "恒安",
    "华泰",
    "永辉",
    "宁德",
    "三坊七巷",
    "太姥",
    "云顶",
]
SCHOOL_KINDS = ["职业技术学院", "技师学院", "高级技工学校", "中等职业学校", "职业中专学校"]
SOCIAL_KINDS = ["职业培训学校", "职业技能培训中心", "技能评价服务中心", "职业技能鉴定所"]

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董潘袁蔡蒋余于杜叶程魏苏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN_CHARS = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国志红玉兰文辉鑫宇浩然子涵欣怡梓轩诗琪晨阳佳琪思远俊杰雨桐嘉怡宏博婷雪梅春燕丽萍海峰"
