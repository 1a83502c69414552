# The system python3 may lack boto3; the notebook's JupyterSystemEnv always has it.
# (Shared by on_create.sh and on_start.sh; stacks/notebook.py inserts it into both.)
pick_python() {
    local candidate
    for candidate in "${SECML_PYTHON:-}" /home/ec2-user/anaconda3/envs/JupyterSystemEnv/bin/python \
        /usr/bin/python3 python3; do
        if [ -n "$candidate" ] && "$candidate" -c 'import boto3' >/dev/null 2>&1; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}
