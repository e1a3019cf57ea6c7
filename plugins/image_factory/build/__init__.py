"""Build: make the factory VMs from the ``GoldenImages/`` templates (the original's MakeGoldenImageVMs + MakeVM).

One VM per template a lab subscribes to, deployed as an ARM template deployment into the factory lab's resource
group with the parameters ``labName``, ``newVMName``, ``userName``, ``password`` and ``size``; the template gets
the public repository's ``windows-sysprep`` / ``linux-deprovision`` artifact appended unless it ends with it or
asks for a specialized image. Modules: ``naming`` (VM and deployment names), ``template`` (the rewriting),
``plan`` (which templates a run builds), ``artifacts`` (what DevTest Labs says of the VM's artifacts),
``password`` (the admin password: a connection or generated, never stored), ``hook`` (ARM deployments and the
lab VM reads and writes a build needs), ``trigger`` + ``operator`` (the deferrable build), ``steps`` (the DAG's
task bodies: list the builds, clean the built VMs after capture).
"""
