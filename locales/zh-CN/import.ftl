# 控制台：批量导入（issue 8 §5）。

import-nav = 批量导入
