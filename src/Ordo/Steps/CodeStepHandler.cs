using Ordo.Engine;
using Ordo.Workflows;

namespace Ordo.Steps;

/// <summary>Runs steps written as C# delegates (workflows built in code).</summary>
internal sealed class CodeStepHandler : IStepHandler
{
    public string Kind => "code";

    public async ValueTask<StepOutcome> ExecuteAsync(StepExecution execution, CancellationToken cancellationToken)
    {
        var step = (CodeStep)execution.Definition;
        var output = await step.Run(new CodeStepContext(execution.JobId, execution.Step, execution.State), cancellationToken).ConfigureAwait(false);
        return StepOutcome.Success(output, step.Output is null ? null : [new ArtifactCandidate(step.Output, output)]);
    }
}
