# Console: bulk import (issue 8 §5).

import-nav = Import
