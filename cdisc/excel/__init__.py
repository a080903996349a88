"""Excel both ways: findings as a Pinnacle 21-shaped workbook (and explanations back as
waivers), and a study's YAML specs as a workbook and back (lossless, checked on export)."""
