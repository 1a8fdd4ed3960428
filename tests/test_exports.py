import datetime as dt
import time

from publish.exports import _xlsx_bytes


def test_workbook_bytes_do_not_depend_on_the_clock():
    row = ("35000001", "福州闽江电气有限公司", "employer", "闽技鉴备〔2023〕0001号", "续期申请期已开启", "institution",
           dt.date(2026, 11, 1), dt.date(2026, 12, 31), 36, dt.date(2026, 12, 31), "张三", "13800000000", "李四",
           "13900000000", "a@b.cn", "续期申请期", "符合续期条件", "", "请提交")
    first = _xlsx_bytes([row], "福州市职业技能鉴定指导中心", dt.date(2026, 11, 25))
    time.sleep(1.1)
    assert _xlsx_bytes([row], "福州市职业技能鉴定指导中心", dt.date(2026, 11, 25)) == first
    assert _xlsx_bytes([row], "福州市职业技能鉴定指导中心", dt.date(2026, 11, 26)) != first
