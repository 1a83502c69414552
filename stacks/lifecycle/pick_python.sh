# The system python3 may lack boto3; the notebook's JupyterSystemEnv always has it.
# (Shared by on_create.sh and on_start.sh; stacks/notebook.py inserts it into both.)
# SECML_PYTHON_CANDIDATES (space-separated) exists for the test suite only.
pick_python() {
    local candidate
    # shellcheck disable=SC2086  # a list of paths, split on purpose
    for candidate in ${SECML_PYTHON_CANDIDATES:-/home/ec2-user/anaconda3/envs/JupyterSystemEnv/bin/python /usr/bin/python3 python3}; do
        if "$candidate" -c 'import boto3' >/dev/null 2>&1; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}
