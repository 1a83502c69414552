# The notebook's kernel, "secml (SageMaker SDK v3)": a virtual environment on the persistent
# volume (/home/ec2-user/SageMaker survives a stop; the root volume does not) over the conda
# python3 env's packages (pandas, matplotlib, ipykernel), with the pinned SageMaker Python SDK v3
# installed into it. The conda env itself is left alone: it keeps its own SDK v2.
# (Shared by on_create.sh and on_start.sh; stacks/notebook.py inserts it into both.)
# SECML_SDK_VENV, SECML_KERNEL_BASE_PYTHON and SECML_KERNELS_DIR exist for the test suite only.
SDK_VENV="${SECML_SDK_VENV:-/home/ec2-user/SageMaker/.secml-sdk-v3}"
SDK_LOG="$SDK_VENV.log"
KERNEL_BASE_PYTHON="${SECML_KERNEL_BASE_PYTHON:-/home/ec2-user/anaconda3/envs/python3/bin/python}"
KERNELS_DIR="${SECML_KERNELS_DIR:-/home/ec2-user/.local/share/jupyter/kernels}"
KERNEL_NAME=secml-sdk-v3

# Jupyter finds the kernel by this file; ~/.local is on the root volume, so every start writes it.
register_sdk_kernel() {
    [ -x "$SDK_VENV/bin/python" ] || return 1
    sudo -u ec2-user mkdir -p "$KERNELS_DIR/$KERNEL_NAME" || return 1
    sudo -u ec2-user tee "$KERNELS_DIR/$KERNEL_NAME/kernel.json" >/dev/null <<JSON
{"argv": ["$SDK_VENV/bin/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
 "display_name": "secml (SageMaker SDK v3)", "language": "python"}
JSON
}
