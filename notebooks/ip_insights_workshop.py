# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # IP Insights workshop (placeholder)
#
# The real workshop notebook replaces this file. It reads `workshop_config.json`, written next to
# it by the notebook instance's lifecycle configuration.

# %%
import json

with open("workshop_config.json", encoding="utf-8") as handle:
    config = json.load(handle)
print(json.dumps(config, indent=2))
