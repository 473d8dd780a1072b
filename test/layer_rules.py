"""The rclpy rule of the layers: only entry-point shells and the ROS glue import rclpy.

``python layer_rules.py ROOT`` prints each import chain to rclpy that starts in another module
of the layer packages under ROOT (run in a process of its own, so that ROOT's packages, not
those already imported, are the ones read) and exits 1 if there is any.
"""
import sys
from pathlib import Path

import grimp

ROS_GLUE = 'twin_ros'
ENTRY_POINT_SUFFIXES = ('_node', '_cli')  # the rclpy shells: nodes and command-line tools


def layer_packages(root: Path) -> list[str]:
    return sorted(p.name for p in root.glob('twin_*') if (p / '__init__.py').is_file())


def rclpy_outside_shells(root: Path) -> list[str]:
    packages = layer_packages(root)
    graph = grimp.build_graph(*packages, include_external_packages=True, cache_dir=None)
    chains = []
    for module in sorted(graph.modules):
        package = module.split('.')[0]
        if package not in packages or package == ROS_GLUE or module.endswith(ENTRY_POINT_SUFFIXES):
            continue
        chain = graph.find_shortest_chain(importer=module, imported='rclpy')
        if chain:
            chains.append(' -> '.join(chain))
    return chains


if __name__ == '__main__':
    root = Path(sys.argv[1]).resolve()
    sys.path.insert(0, str(root))
    found = rclpy_outside_shells(root)
    for chain in found:
        print(chain)
    sys.exit(1 if found else 0)
