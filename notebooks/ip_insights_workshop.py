# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: secml (SageMaker SDK v3)
#     language: python
#     name: secml-sdk-v3
# ---

# %% [markdown]
# # Exercise 3: IP-based anomaly detection with IP Insights
#
# In exercise 2 two Lambda functions turned CloudTrail logs and GuardDuty findings into
# `<principal ID, IP address>` tuples. In this notebook you will:
#
# 1. load both tuple files and look at them;
# 2. set aside the activity under investigation, and a slice of normal activity;
# 3. train **IP Insights** on the CloudTrail tuples: it learns which principals normally use
#    which IP addresses;
# 4. score held-out normal activity and the GuardDuty tuples, and pick a threshold;
# 5. rank the GuardDuty findings by how unusual their address is for their user;
# 6. check that nothing is left running.
#
# Run the cells one by one (Shift+Enter) and read the short explanation above each. The
# plumbing (reading files, talking to SageMaker, drawing) is in `workshop_helpers.py` next to
# this notebook: open it whenever you want to see how a step is done.

# %% [markdown]
# ## 1. Where am I?
#
# The workshop stack left `workshop_config.json` next to this notebook: the names of your
# buckets, the region and the stack. On the workshop's notebook instance this notebook trains
# SageMaker's built-in IP Insights algorithm (`sagemaker`). On a laptop it runs the same steps
# with a local re-implementation of IP Insights and no AWS account (`local`).

# %%
import matplotlib.pyplot as plt
import workshop_helpers as wh

CONFIG, CONFIG_PATH = wh.load_config()
BACKEND = wh.choose_backend(CONFIG_PATH)
print(f"backend: {BACKEND}")
print(f"config:  {CONFIG_PATH or '(none)'}")
for key, value in CONFIG.items():
    print(f"  {key}: {value}")

# %% [markdown]
# ### Settings
#
# The hyperparameters are the ones of the public IP Insights tutorial. The number of entity
# vectors is set from the data below: twice the number of distinct principals, as SageMaker
# suggests, but at least 20,000 (the original workshop's value): principals are hashed into
# these vectors, and with too few of them two users would share one.

# %%
HYPERPARAMETERS = {
    "vector_dim": 128,
    "random_negative_sampling_rate": 5,
    "mini_batch_size": 1000,
    "epochs": 5,
    "learning_rate": 0.01,
}
MIN_ENTITY_VECTORS = 20_000
# Share of the normal CloudTrail tuples kept out of training to calibrate the threshold.
HOLDOUT_FRACTION = 0.1
# A tuple is flagged when it scores below this percentile of held-out normal activity.
THRESHOLD_PERCENTILE = 1.0
# Train without the tuples we are about to judge (see step 2). Try False once, after the end.
EXCLUDE_SCORED_TUPLES = True

# %% [markdown]
# ## 2. Load and inspect the tuples
#
# Training data: `train/cloudtrail_tuples.csv` (CloudTrail, exercise 2.1). Data to score:
# `infer/guardduty_tuples.csv` (GuardDuty findings, exercise 2.2). Both are in your tuples
# bucket. The GuardDuty findings themselves are read too, to show each score next to the
# finding's type and user name at the end. If a file is missing, this cell says which
# exercise to finish first.

# %% tags=["load-inputs"]
data = wh.WorkshopData(BACKEND, CONFIG)
print(f"training tuples (CloudTrail): {len(data.cloudtrail):,}")
print(f"tuples to score (GuardDuty):  {len(data.guardduty):,}")
print(f"GuardDuty findings with a user and an address: {data.findings['finding_id'].nunique():,}")
data.cloudtrail.head()

# %% [markdown]
# What the model will learn from: how many principals and addresses there are, and who is
# busiest.

# %%
print(f"distinct principals:   {data.cloudtrail['principal'].nunique():,}")
print(f"distinct IP addresses: {data.cloudtrail['ip'].nunique():,}")
print(f"IPv6 tuples:           {(data.cloudtrail['ip'].map(wh.ip_version) == 6).sum():,}")
data.cloudtrail["principal"].value_counts().head(10).rename("events").to_frame()

# %% [markdown]
# ### Set two things aside before training
#
# **The activity under investigation.** The CloudTrail logs cover the same days as the
# findings, so the attacker's API calls are training tuples too. An attacker who used a stolen
# key from one address a dozen times has, as far as the model can tell, an address that only
# that user uses: IP Insights would learn it as normal. In production the model is trained on
# past activity, before the attack; we get the same effect by leaving the `(principal, ip)`
# pairs we are about to score out of training. No labels are used: benign and malicious
# findings are treated alike.
#
# **A slice of normal activity.** To decide how low a score must be to count as unusual, we
# need scores of normal activity *that the model has never seen*: the findings we score are
# new to it too, and a model always scores its own training data a little higher. So 10 % of
# the remaining CloudTrail tuples are held out now, scored after training, and the threshold
# is taken from them (step 5). This is how `make demo` does it as well.

# %%
training_set, holdout, excluded = wh.split_training_data(
    data.cloudtrail,
    data.guardduty,
    holdout_fraction=HOLDOUT_FRACTION,
    exclude_scored_tuples=EXCLUDE_SCORED_TUPLES,
)
print(f"left out as under investigation: {excluded:,}")
print(f"held out as unseen normal activity: {len(holdout):,}")
print(f"training tuples: {len(training_set):,} of {len(data.cloudtrail):,}")

# %% [markdown]
# ## 3. Train IP Insights
#
# IP Insights learns a vector for every principal and every IP address, such that principals
# and the addresses they really use get a high **dot product**, while random pairings get a
# low one. It needs no labels: normal CloudTrail activity is the only input.
#
# On the notebook instance this cell uploads the training tuples to your tuples bucket and
# starts a SageMaker training job on an `ml.m5.large` instance through the SageMaker Python
# SDK (`ModelTrainer` with the built-in image). It takes about 5 minutes, and the cell prints
# the job's status every 30 seconds: `Starting`, `Downloading`, `Training`, `Uploading`,
# then `Completed`. The built-in algorithm accepts IPv4 addresses only: IPv6 tuples are left
# out, and counted.

# %%
hyperparameters = {
    "num_entity_vectors": wh.entity_vectors(training_set, MIN_ENTITY_VECTORS),
    **HYPERPARAMETERS,
}
print(hyperparameters)
ipinsights = wh.ipinsights_backend(BACKEND, CONFIG)
ipinsights.train(training_set, hyperparameters)

# %% [markdown]
# ## 4. Score held-out normal activity and the GuardDuty tuples
#
# The score of a tuple is the dot product of the principal's vector and the address's vector:
# high means "this principal normally uses addresses like this one", low means "unusual".
#
# On the notebook instance the model is hosted on a real-time endpoint **only for the duration
# of this cell** (5 to 8 minutes to create it, status printed every 30 seconds). A real-time
# endpoint is billed every second it exists, so the `with` block deletes the endpoint, its
# configuration and the model when it ends, even when a line inside it fails or you interrupt
# the cell. The tuples go in requests well under the 6 MB limit of one request. Tuples the
# built-in cannot score (IPv6) get no score.

# %% tags=["scoring"]
with ipinsights.deployed():
    holdout_scores = ipinsights.score(holdout)
    data.guardduty["score"] = ipinsights.score(data.guardduty)
data.guardduty.sort_values("score").head(10)

# %% [markdown]
# ## 5. Choose a threshold
#
# In real life there are no labels, so the threshold comes from normal activity alone: a tuple
# is **unusual** when it scores lower than `THRESHOLD_PERCENTILE` percent of the held-out
# normal tuples. With 1 % we accept that about one normal event in a hundred gets flagged; a
# lower percentile means fewer false alarms but more missed attacks.

# %%
threshold = wh.threshold_from_holdout(holdout_scores, THRESHOLD_PERCENTILE)
below = data.guardduty["score"] < threshold
print(f"threshold (percentile {THRESHOLD_PERCENTILE} of held-out normal scores): {threshold:.3f}")
print(f"GuardDuty tuples below it: {below.sum():,} of {data.guardduty['score'].notna().sum():,}")

# %% [markdown]
# ## 6. Rank the GuardDuty findings
#
# Each finding gets the score of its most unusual `(principal, ip)` tuple, and the findings
# are sorted from most to least unusual: the list an analyst works through first. The
# workshop dataset comes with the answers (`truth.csv`), shown as `label`; a real account has
# no such column.

# %%
ranked = wh.rank_findings(data.findings, data.guardduty, threshold, data.truth)
print(f"{len(ranked):,} findings ranked")
ranked[wh.RANKED_COLUMNS].head(20).round(3)

# %% [markdown]
# The picture: grey bars are held-out normal activity, each marker is one finding (red crosses
# malicious, blue dots benign), and the dashed line is the threshold. Markers left of the line
# are flagged. (A marker's height means nothing: it only keeps the markers apart.)

# %%
wh.plot_scores(holdout_scores, ranked, threshold)
plt.show()

# %% [markdown]
# ## 7. How good is the ranking?
#
# With the answers we can measure the ranking:
#
# * **precision** at the threshold: of the findings we flag, how many are malicious;
# * **recall** at the threshold: of the malicious findings, how many we flag;
# * **precision at k**, with k the number of malicious findings: how clean the top of the
#   list is;
# * **AUC**: the chance that a random malicious finding ranks above a random benign one.

# %%
EVALUATION = wh.evaluate(ranked)
for name, value in EVALUATION.items():
    print(f"{name:>15}: {value:.3f}" if isinstance(value, float) else f"{name:>15}: {value}")
if not EVALUATION:
    print("no truth.csv: nothing to measure against")

# %% [markdown]
# ## 8. Clean up
#
# The endpoint was already deleted at the end of step 4. This cell deletes anything still
# recorded (for example after an interrupted step 4) and asks SageMaker whether any endpoint
# this notebook created still exists, so you can see that nothing is billing. Finished
# training jobs cost nothing; the notebook instance stops on its own after an idle hour.

# %%
ipinsights.cleanup()
alive = ipinsights.endpoints_still_there()
print(f"endpoints created by this notebook that still exist: {alive or 'none'}")

# %% [markdown]
# ## 9. From workshop to production
#
# The notebook is a one-off analysis. A production version scores every new finding as it
# arrives:
#
# 1. **Amazon EventBridge** matches new GuardDuty findings (`source: aws.guardduty`).
# 2. A **Lambda function** extracts the `(principal, ip)` tuples with the same code as the
#    GuardDuty ingest Lambda of exercise 2 and calls the **SageMaker endpoint**.
# 3. When the score is below the threshold, it publishes the finding and its score to an
#    **Amazon SNS** topic (e-mail, chat, ticketing).
# 4. A scheduled job retrains IP Insights on recent CloudTrail tuples (weekly, say), and the
#    threshold is recomputed from a fresh held-out slice.
#
# An always-on endpoint is the main cost: consider a serverless endpoint or batch transform
# when findings arrive in small numbers.

# %% [markdown]
# ### Optional: send your model to detection
#
# The workshop app can run that pipeline for you. If your facilitator deployed its detection
# part, this cell sends your model to it, with the threshold from step 5: every new GuardDuty
# finding is then scored by your model, and an unusual one raises an alert. Otherwise it says
# so and sends nothing; on the notebook instance it says how to produce such a model instead.

# %%
sent_to = wh.send_model_to_detection(
    ipinsights,
    training_set,
    threshold,
    CONFIG,
    threshold_rule=f"percentile {THRESHOLD_PERCENTILE:g} of {len(holdout):,} held-out scores",
)

# %% [markdown]
# ## 10. What to try next (optional)
#
# Each experiment means running steps 2 to 7 again after changing a setting. On the notebook
# instance one rerun is about 12 minutes (5 of training, 5 to 8 for the endpoint) and about
# $0.05 of `ml.m5.large` time (training and endpoint, us-east-1 prices); on a laptop it takes
# a few seconds and costs nothing.
#
# * **`EXCLUDE_SCORED_TUPLES = False`**: train on everything, the attacker's calls included,
#   and watch the malicious findings move right, among normal activity.
# * **`THRESHOLD_PERCENTILE`** 0.1 or 5: fewer or more flagged findings; watch precision and
#   recall trade places.
# * **`epochs`** 1 or 20, **`vector_dim`** 16: a weaker or a longer-trained model; does the
#   order of the list change?
