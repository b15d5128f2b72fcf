"""The ROS layer: the only part of the package that imports rclpy and messages."""
