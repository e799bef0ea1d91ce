"""How many distinct models the busiest paragraph of a paper's main text names (issue 10: at most five).

    .venv/bin/python scripts/paper_paragraphs.py results/paper/paper.pdf config.yaml
"""
import re, subprocess, sys, yaml
pdf, config = sys.argv[1], sys.argv[2]
text = subprocess.run(["pdftotext", pdf, "-"], capture_output=True, text=True).stdout
main = text.split("\nReferences\n")[0]
cfg = yaml.safe_load(open(config))
from ttdm.config import load_config
c = load_config(config)
names = sorted({m for m in c["models"]}, key=len, reverse=True)
worst = (0, "")
for para in re.split(r"\n\s*\n", main):
    flat = " ".join(para.split())
    found = set()
    for n in names:
        if re.search(r"(?<![\w-])" + re.escape(n) + r"(?![\w-])", flat):
            found.add(n)
    if len(found) > worst[0]:
        worst = (len(found), flat[:300] + " || " + ", ".join(sorted(found)))
print("max distinct models in one paragraph:", worst[0]); print(worst[1])
