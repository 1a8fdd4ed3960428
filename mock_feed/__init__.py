"""Mock of 技能人才评价工作网: dataset generator and HTTP feed (docs/contract.md §2–3)."""
