python -m cnn_core train --data-dir /usr/share/datasets/fashion-mnist --epochs 2 --batch-size 256 --lr 0.01 --json
