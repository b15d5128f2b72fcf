"""Variants of the shipped Panda URDF for the tests, made by plain text edits (nothing from ik_neural):
a continuous joint, a frame above the base, a broken number."""

from __future__ import annotations

import re
from pathlib import Path

PANDA_URDF = Path(__file__).resolve().parents[1] / "models" / "panda" / "panda.urdf"


def panda_urdf() -> str:
    """The shipped Panda URDF's text (its meshes named package://ik_neural/..., which the package resolves)."""
    return PANDA_URDF.read_text()


def with_continuous_joint(urdf: str, joint: str) -> str:
    """``joint`` made continuous (its <limit> stays, as URDF allows, and is ignored)."""
    edited, count = re.subn(rf'(<joint name="{joint}" type=")revolute(")', r"\1continuous\2", urdf)
    assert count == 1, joint
    return edited


def with_world_frame(urdf: str, xyz: str, rpy: str) -> str:
    """A link 'world' above panda_link0, fixed to it at origin (xyz, rpy) (strings, metres and radians)."""
    world = (
        f'<link name="world"/><joint name="world_to_panda" type="fixed"><parent link="world"/>'
        f'<child link="panda_link0"/><origin xyz="{xyz}" rpy="{rpy}"/></joint>'
    )
    return re.sub(r"(<robot[^>]*>)", lambda m: m.group(1) + world, urdf, count=1)


def with_joint_origin(urdf: str, joint: str, xyz: str) -> str:
    """``joint``'s origin xyz replaced (e.g. by 'nan 0 0.333')."""
    edited, count = re.subn(rf'(<joint name="{joint}".*?<origin xyz=")[^"]*(")', rf"\g<1>{xyz}\g<2>", urdf, flags=re.S)
    assert count == 1, joint
    return edited


def slider_urdf(base: str, slider: str, block: str) -> str:
    """A slider robot: ``base``, link ``slider`` moving along x (prismatic joint "x", -0.5 to 2 m), ``block``
    fixed to it at its origin and a ``tool`` 0.5 m above the block. Each argument is that link's inner XML (its
    collision elements, or "")."""
    return f"""<?xml version="1.0"?>
<robot name="slider">
  <link name="base">{base}</link>
  <link name="slider">{slider}</link>
  <link name="block">{block}</link>
  <link name="tool"/>
  <joint name="x" type="prismatic">
    <parent link="base"/><child link="slider"/><axis xyz="1 0 0"/>
    <limit lower="-0.5" upper="2" effort="1" velocity="1"/>
  </joint>
  <joint name="fix" type="fixed"><parent link="slider"/><child link="block"/></joint>
  <joint name="tool_joint" type="fixed"><parent link="block"/><child link="tool"/><origin xyz="0 0 0.5"/></joint>
</robot>
"""
