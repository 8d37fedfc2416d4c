"""Both plugins in one bot, fed a few thousand random and structured raw IRC lines by the
fuzz harness of lab/fuzz.py (its docstring says what is fed and what is checked);
THREATNET_FUZZ_LINES and THREATNET_FUZZ_SEED change the run. bench/fuzz.py runs it for a
million lines.
"""
import os

from lab import fuzz


class FuzzTestCase(fuzz.FuzzHarness):
    def test_random_and_structured_lines(self):
        lines = int(os.environ.get("THREATNET_FUZZ_LINES", "6000"))
        seed = int(os.environ.get("THREATNET_FUZZ_SEED", "1"))
        report = self.run_fuzz(lines, seed)
        if report["failures"]:
            self.fail(f"{len(report['failures'])} kinds of failure in {lines} lines "
                      f"(seed {seed}):\n\n" + "\n\n".join(report["failures"][:10]))
